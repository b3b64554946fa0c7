"""Start-up validation of an options file: every error names the key, the bad value and the allowed values.

BasicSR reports most mistakes late (after the experiment folder was created and the old one archived) and as
bare tracebacks (KeyError, TypeError in a constructor, ZeroDivisionError). ``amsnet_basicsr/train.py`` runs
:func:`check_options` right after parsing, before anything is written; AMSNetModel runs
:func:`check_model_options` when it is built (train and test).
"""
import argparse
import difflib
import math
import os
import warnings
from typing import Any, Dict, Mapping

import torch
import yaml

from .config import SchemeConfig, is_integer, require_integer
from .distill import check_distill_options
from .errors import OptionError, SetupError
from .networks import check_network_options

# train.stage -> its loss (LOSS_REGISTRY): L_m (Eq. 4), L_t (Eq. 10), L1 to the teacher's output; the first stage is
# the default. The stage alone decides the loss: train.pixel_opt only sets its parameters (stage_pixel_options).
STAGE_LOSSES = {'mask': 'MaskedL1Loss', 'finetune': 'FinetuneLoss', 'distill': 'L1Loss'}
SCHEDULERS = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')
PREFETCH_MODES = (None, 'cpu', 'cuda')
IO_BACKENDS = ('disk', 'lmdb')
DIRECT_READERS = ('SIDDValidationDataset', 'SIDDBenchmarkDataset', 'DNDDataset', 'PolyUDataset', 'PairedFolderDataset')

# The keys of datasets.<phase> read for every dataset type (basicsr 1.4.2): phase and scale are set by
# utils/options.py parse_options; the loader keys are read by data/__init__.py build_dataloader and train.py
# create_train_val_dataloader; submission / submission_info by amsnet_basicsr.submission; resume_skip
# (progress.RESUME_KEY) is set by amsnet_basicsr.checkpoint on a resume.
COMMON_DATASET_KEYS = frozenset({
    'name', 'type', 'phase', 'scale', 'batch_size_per_gpu', 'num_worker_per_gpu', 'dataset_enlarge_ratio',
    'pin_memory', 'persistent_workers', 'prefetch_mode', 'num_prefetch_queue', 'submission', 'submission_info',
    'resume_skip'})
_SIDD_BLOCKS_KEYS = frozenset({'dataroot', 'dataroot_lq', 'dataroot_gt', 'lq_key', 'gt_key', 'num_blocks',
                               'block_indices', 'name_prefix'})  # data/benchmark_datasets.py _SIDDBlocksDataset
_FOLDER_PAIR_KEYS = frozenset({'dataroot_lq', 'dataroot_gt', 'lq_suffix', 'gt_suffix'})  # PairedFolderDataset
# The keys each dataset type reads besides the common ones; a type not listed here (another plugin's, BasicSR's
# video sets) is not checked. Every other key would be silently ignored, e.g. a misspelt use_hflip.
DATASET_KEYS = {
    'NoisyImageDataset': frozenset({'dataroot_lq', 'io_backend', 'meta_info_file', 'crop_size', 'use_hflip',
                                    'use_rot', 'bad_images'}),  # data/noisy_image_dataset.py (mean/std unused)
    'SIDDValidationDataset': _SIDD_BLOCKS_KEYS,
    'SIDDBenchmarkDataset': _SIDD_BLOCKS_KEYS,
    'DNDDataset': frozenset({'dataroot_lq'}),
    'PairedFolderDataset': _FOLDER_PAIR_KEYS,
    'PolyUDataset': _FOLDER_PAIR_KEYS,
    # basicsr 1.4.2 data/paired_image_dataset.py and data/single_image_dataset.py
    'PairedImageDataset': frozenset({'dataroot_gt', 'dataroot_lq', 'io_backend', 'meta_info_file', 'filename_tmpl',
                                     'gt_size', 'use_hflip', 'use_rot', 'color', 'mean', 'std'}),
    'SingleImageDataset': frozenset({'dataroot_lq', 'io_backend', 'meta_info_file', 'color', 'mean', 'std'}),
}


def stage_pixel_options(train: Mapping[str, Any], stage_losses: Mapping[str, str] = STAGE_LOSSES) -> Dict[str, Any]:
    """The loss of ``train.stage``, as BasicSR's ``train.pixel_opt``: the stage alone decides the loss
    (``stage_losses``: ``mask`` -> L_m, Eq. 4; ``finetune`` -> L_t, Eq. 10; ``distill`` -> L1 to the teacher), and
    ``pixel_opt`` only sets its parameters (``loss_weight``; FinetuneLoss's ``smoothness_weight``, lambda of Eq. 10).
    ``pixel_opt`` and its ``type`` may be left out; an explicit ``type`` must be the stage's. Returns a new dict with
    ``type`` filled in (``train`` is not changed); :class:`OptionError` names the key otherwise."""
    stage = train.get('stage', next(iter(stage_losses)))
    if stage not in stage_losses:
        raise OptionError(f'train.stage: {stage!r} is not one of {", ".join(stage_losses)}')
    pixel_opt = train.get('pixel_opt') or {}
    if not isinstance(pixel_opt, Mapping):
        raise OptionError(f'train.pixel_opt must be a mapping of the loss\'s parameters (loss_weight: ...), got '
                          f'{pixel_opt!r}')
    pixel_type = pixel_opt.get('type', stage_losses[stage])
    if pixel_type != stage_losses[stage]:
        allowed = ', '.join(f'{name}: {loss}' for name, loss in stage_losses.items())
        raise OptionError(f'train.pixel_opt.type must be {stage_losses[stage]} for train.stage {stage!r}, got '
                          f'{pixel_type!r} ({allowed}; train.stage sets it when the type is left out)')
    return {'type': stage_losses[stage], **{key: value for key, value in pixel_opt.items() if key != 'type'}}


def check_train_options(opt, stage_losses=STAGE_LOSSES):
    """The ``train:`` section of a training run (stage, loss, optimiser, scheduler, iterations).

    ``stage_losses`` maps the model's training stages to the loss each needs (the first stage is the default;
    :func:`stage_pixel_options`).
    """
    train = opt.get('train')
    if not isinstance(train, dict):
        raise OptionError('train: section is required for training')
    stage_pixel_options(train, stage_losses)
    optim = train.get('optim_g') or {}
    optimizer_class = getattr(torch.optim, str(optim.get('type')), None)
    if not isinstance(optimizer_class, type) or not issubclass(optimizer_class, torch.optim.Optimizer):
        raise OptionError(f'train.optim_g.type: {optim.get("type")!r} is not a torch.optim optimizer '
                          '(e.g. AdamW, Adam, SGD)')
    lr = optim.get('lr')
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise OptionError(f'train.optim_g.lr must be a finite number > 0, got {lr!r}')
    scheduler_type = (train.get('scheduler') or {}).get('type')
    if scheduler_type not in SCHEDULERS:
        raise OptionError(f'train.scheduler.type: {scheduler_type!r} is not one of {", ".join(SCHEDULERS)}')
    require_integer(train.get('total_iter'), 'train.total_iter', 1)


def check_model_options(opt, stage_losses=STAGE_LOSSES):
    """What AMSNetModel needs (train and test): the ``amsnet:`` section, ``network_g``, ``num_gpu``, ``train:``."""
    SchemeConfig.from_options(opt)
    check_network_options(opt)
    num_gpu = opt.get('num_gpu', 'auto')
    if num_gpu != 'auto' and not is_integer(num_gpu, 0):
        raise OptionError(f'num_gpu must be auto or an integer >= 0, got {num_gpu!r}')
    if is_integer(num_gpu, 1) and torch.cuda.device_count() < num_gpu:
        raise OptionError(f'num_gpu: {num_gpu}, but {torch.cuda.device_count()} CUDA device(s) are visible; '
                          'use num_gpu: auto (0 without CUDA)')
    if opt.get('is_train'):
        check_train_options(opt, stage_losses)
        if opt['train'].get('stage') == 'distill':
            check_distill_options(opt)
        elif SchemeConfig.from_options(opt).single_pass:
            raise OptionError(f'amsnet.single_pass: a single-pass network is trained by train.stage distill, not '
                              f'{opt["train"].get("stage", next(iter(stage_losses)))!r}')


def _path_keys(dataset):
    return [key for key in dataset if key.startswith('dataroot') or key == 'meta_info_file']


def check_dataset_keys(prefix, dataset):
    """Every key of a dataset of a type in :data:`DATASET_KEYS` is one it reads: a misspelt optional key would be
    silently ignored (``use_hflp`` would leave flips on)."""
    dataset_type = dataset.get('type')
    if dataset_type not in DATASET_KEYS:
        return
    allowed = sorted(COMMON_DATASET_KEYS | DATASET_KEYS[dataset_type])
    tolerated = {'io_backend'} if dataset_type in DIRECT_READERS else set()  # older files: a warning, see below
    for key in dataset:
        if key not in allowed and key not in tolerated:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f'did you mean {close[0]}?' if close else f'allowed: {", ".join(allowed)}'
            raise OptionError(f'{prefix}.{key}: not an option of {dataset_type}; {hint}')


def check_dataset_options(opt):
    """Every ``datasets.<phase>``: a registered type, existing paths; the training set's crop/batch/workers."""
    from basicsr.utils.registry import DATASET_REGISTRY

    datasets = opt.get('datasets')
    if not isinstance(datasets, dict) or not datasets:
        raise OptionError('datasets: at least one dataset is required')
    registered = sorted(name for name, _ in DATASET_REGISTRY)
    for phase, dataset in datasets.items():
        prefix = f'datasets.{phase}'
        if not isinstance(dataset, dict):
            raise OptionError(f'{prefix}: must be a mapping with name, type, io_backend, ...')
        if dataset.get('type') not in registered:
            raise OptionError(f'{prefix}.type: {dataset.get("type")!r} is not a registered dataset; allowed: '
                              f'{", ".join(registered)}')
        check_dataset_keys(prefix, dataset)
        for key in _path_keys(dataset):
            path = dataset[key]
            if path is not None and not os.path.exists(os.path.expanduser(str(path))):
                raise OptionError(f'{prefix}.{key}: {path} does not exist (relative paths are resolved against the '
                                  f'current directory {os.getcwd()})')
        if dataset.get('type') in DIRECT_READERS and 'io_backend' in dataset:  # older files have it: keep them working
            warnings.warn(f'{prefix}.io_backend: {dataset["type"]} reads its files itself and never uses io_backend; '
                          'the key is ignored (remove it)', stacklevel=2)
        backend = (dataset.get('io_backend') or {}).get('type')
        if dataset.get('type') == 'NoisyImageDataset' and backend not in IO_BACKENDS:
            raise OptionError(f'{prefix}.io_backend.type: {backend!r} is not one of {", ".join(IO_BACKENDS)}')
        if phase == 'train':
            if dataset.get('type') == 'NoisyImageDataset':
                if dataset.get('dataroot_lq') is None:
                    raise OptionError(f'{prefix}.dataroot_lq is required (a folder or a *.lmdb of noisy images)')
                require_integer(dataset.get('crop_size'), f'{prefix}.crop_size', 1)
            require_integer(dataset.get('batch_size_per_gpu'), f'{prefix}.batch_size_per_gpu', 1)
            require_integer(dataset.get('num_worker_per_gpu', 0), f'{prefix}.num_worker_per_gpu', 0)
            require_integer(dataset.get('dataset_enlarge_ratio', 1), f'{prefix}.dataset_enlarge_ratio', 1)
            mode = dataset.get('prefetch_mode')
            if mode not in PREFETCH_MODES:
                raise OptionError(f'{prefix}.prefetch_mode: {mode!r} is not one of ~ (none), cpu, cuda')
            if mode == 'cuda' and not torch.cuda.is_available():
                raise OptionError(f'{prefix}.prefetch_mode: cuda needs a GPU; use ~ or cpu')


def check_options(opt):
    """Everything checkable before a training run writes anything; raises :class:`OptionError`."""
    if not opt.get('name'):
        raise OptionError('name is required (the experiment folder experiments/<name>)')
    from basicsr.utils.registry import MODEL_REGISTRY

    model_type = opt.get('model_type')
    if model_type not in MODEL_REGISTRY:
        raise OptionError(f'model_type: {model_type!r} is not a registered model; allowed: '
                          f'{", ".join(sorted(name for name, _ in MODEL_REGISTRY))}')
    check_model_options(opt, getattr(MODEL_REGISTRY.get(model_type), 'STAGE_LOSSES', STAGE_LOSSES))
    check_dataset_options(opt)
    if opt.get('is_train'):
        logger = opt.get('logger') or {}
        for key in ('print_freq', 'save_checkpoint_freq'):
            require_integer(logger.get(key), f'logger.{key}', 1)
        if opt.get('val') is not None:
            require_integer(opt['val'].get('val_freq'), 'val.val_freq', 1)
    if opt.get('val') is not None or not opt.get('is_train'):  # BasicSR reads val.save_img (KeyError otherwise)
        save_img = (opt.get('val') or {}).get('save_img')
        if not isinstance(save_img, bool):
            raise OptionError(f'val.save_img must be true or false, got {save_img!r} (true: the denoised images are '
                              'written to the visualization folder)')
    path = opt.get('path') or {}
    resuming = opt.get('auto_resume') or path.get('resume_state')
    for key, value in path.items():
        if key.startswith('pretrain_network') and value is not None and not resuming and not os.path.isfile(value):
            raise OptionError(f'path.{key}: {value} does not exist')


def read_options_file(path):
    """The options in ``path``, read as BasicSR's ``parse_options`` reads them. It gives a traceback for a missing,
    unreadable or malformed file and for a missing ``name``, ``num_gpu``, ``datasets`` or ``path`` (it indexes
    them); here each is one line naming the file or the key."""
    from basicsr.utils.options import ordered_yaml
    try:
        with open(path, encoding='utf-8') as handle:
            opt = yaml.load(handle, Loader=ordered_yaml()[0])
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise SetupError(f'cannot read options file {path}: {" ".join(str(error).split())}') from error
    if not isinstance(opt, dict):
        raise SetupError(f'options file {path} is not a mapping of options (name: ..., network_g: ..., ...)')
    missing = [key for key in ('name', 'num_gpu', 'datasets', 'path') if key not in opt]
    if missing:
        raise OptionError(f'options file {path}: {", ".join(missing)} is required')
    if not isinstance(opt['path'], dict):
        raise OptionError(f'options file {path}: path must be a mapping (pretrain_network_g: ..., ...)')
    if not isinstance(opt['datasets'], dict):
        raise OptionError(f'options file {path}: datasets must be a mapping of datasets (train: ..., val: ...)')
    for phase, dataset in opt['datasets'].items():
        if not isinstance(dataset, dict):
            raise OptionError(f'options file {path}: datasets.{phase} must be a mapping with name, type, ...')
    return opt


def parse_and_check_options(root_path, is_train=True):
    """BasicSR's ``parse_options``, then :func:`check_options` before ``experiments/<name>`` or ``results/<name>``
    is created or archived (installed into ``basicsr.train`` and ``basicsr.test`` by
    :func:`amsnet_basicsr.basicsr_compat.install`).

    The ``-opt`` file is read by :func:`read_options_file` first. For testing, ``val.suffix`` is optional: BasicSR
    reads it whenever ``val.save_img`` is true and names the images ``<image>_<name>.png`` when it is ``~``, so a
    missing suffix means that, not a KeyError after the whole test set was denoised.
    """
    from basicsr.utils.options import parse_options
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt')
    option_file = parser.parse_known_args()[0].opt
    if option_file is not None:  # without -opt, BasicSR's own parser prints its usage
        read_options_file(option_file)
    opt, args = parse_options(root_path, is_train=is_train)
    if not is_train and isinstance(opt.get('val'), dict):
        opt['val'].setdefault('suffix', None)
    check_options(opt)
    return opt, args
