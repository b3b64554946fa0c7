"""Every compatibility patch this plugin applies to BasicSR, each with its reason and the basicsr version it fixes
(and the one it applies to bm4d, BM3D's engine: :func:`numpy_trapz_for_bm4d`).

Importing this module applies the one patch that must precede any ``import basicsr`` (the torchvision alias).
:func:`install` applies the pipeline patches; ``amsnet_basicsr/train.py`` and ``amsnet_basicsr/test.py`` call it
(through :func:`amsnet_basicsr.pipelines.install_patches`).
Nothing in basicsr's files is edited: each patch rebinds one name that basicsr looks up at call time. Each is
gated on ``PATCHED_BASICSR`` (the versions whose behaviour was read and tested); with another basicsr version none
is applied (:func:`install` says so in a warning).
"""
import importlib.metadata
import sys
import warnings

PATCHED_BASICSR = ('1.4.2',)


def basicsr_version():
    try:
        return importlib.metadata.version('basicsr')
    except importlib.metadata.PackageNotFoundError:
        return None


def _alias_functional_tensor():
    """basicsr 1.4.2 (data/degradations.py) imports ``torchvision.transforms.functional_tensor``, which torchvision
    0.17 renamed to ``_functional_tensor``: without this alias ``import basicsr`` fails on current torchvision."""
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401  (torchvision < 0.17 still ships it)
    except ImportError:
        import torchvision.transforms._functional_tensor as functional_tensor
        sys.modules['torchvision.transforms.functional_tensor'] = functional_tensor


if basicsr_version() in PATCHED_BASICSR:
    _alias_functional_tensor()


def numpy_trapz_for_bm4d():
    """bm4d 4.2.5 (``_process_psd``, reached by ``bm3d.bm3d`` whenever it is given a noise PSD rather than a standard
    deviation) calls ``np.trapz``, which NumPy 2.0 deprecated and NumPy 2.4 removed in favour of ``np.trapezoid``
    (the same function): without this alias BM3D with a PSD raises AttributeError on current NumPy. Idempotent;
    nothing is done where NumPy still has ``trapz``."""
    import numpy
    if not hasattr(numpy, 'trapz'):
        numpy.trapz = numpy.trapezoid


def install(*, init_dist, parse_options, load_resume_state, prefetch_generator, sampler, cpu_prefetcher,
            cuda_prefetcher):
    """Rebind the basicsr names that break outside a single CUDA process (idempotent); the replacements are passed in
    by :func:`amsnet_basicsr.pipelines.run`, so this module imports nothing of the package. Reasons, per name:

    * ``basicsr.utils.options.init_dist`` (``init_dist``): hard-codes NCCL and ``torch.cuda.set_device``
      (ZeroDivisionError on CPUs) and forces 'spawn' (every CPU DataLoader worker re-imports torch) -> CPU/GPU-aware,
      Gloo on CPUs.
    * ``basicsr.train.parse_options`` / ``basicsr.test.parse_options`` (``parse_options``): options are checked late,
      after the experiment folder is created or archived, and as tracebacks -> parse, then check every key at once.
    * ``basicsr.train.load_resume_state`` (``load_resume_state``): needs CUDA and takes the newest state blindly (a
      file truncated by a kill breaks resume) -> CPU-safe, newest complete state.
    * ``basicsr.data.prefetch_dataloader.PrefetchGenerator`` (``prefetch_generator``): with ``prefetch_mode: cpu`` a
      data error in the prefetch thread hangs the main process forever -> the error is raised in the training loop.
    * ``basicsr.train.EnlargedSampler`` / ``CPUPrefetcher`` / ``CUDAPrefetcher`` (``sampler``, ``cpu_prefetcher``,
      ``cuda_prefetcher``): a resumed run replays its whole epoch -> the sampler and prefetcher carry how far into
      the epoch the run is, and a resume continues there.
    """
    version = basicsr_version()
    if version not in PATCHED_BASICSR:
        warnings.warn(f'basicsr {version} is not one of the tested versions {", ".join(PATCHED_BASICSR)}: '
                      'amsnet_basicsr leaves its pipeline unpatched (CPU DDP, resume and start-up checks may fail)',
                      stacklevel=2)
        return
    import basicsr.data.prefetch_dataloader as basicsr_prefetch
    import basicsr.test as basicsr_test
    import basicsr.train as basicsr_train
    import basicsr.utils.options as basicsr_options

    basicsr_options.init_dist = init_dist
    basicsr_train.parse_options = parse_options
    basicsr_test.parse_options = parse_options
    basicsr_train.load_resume_state = load_resume_state
    basicsr_prefetch.PrefetchGenerator = prefetch_generator
    basicsr_train.EnlargedSampler = sampler
    basicsr_train.CPUPrefetcher = cpu_prefetcher
    basicsr_train.CUDAPrefetcher = cuda_prefetcher
