"""``import amsnet_basicsr.plugin`` registers AMSNet into BasicSR: its denoisers (ARCH_REGISTRY), datasets
(DATASET_REGISTRY), losses (LOSS_REGISTRY), metrics (METRIC_REGISTRY) and models (MODEL_REGISTRY).

Import it before building anything from an options file, and before your own first ``import basicsr``: it applies
:mod:`amsnet_basicsr.basicsr_compat` first, without which basicsr 1.4.2 does not import on current torchvision.
"""
import warnings

from . import basicsr_compat  # noqa: F401  (the torchvision alias, before anything imports basicsr)

with warnings.catch_warnings():
    # spandrel_extra_arches decorates an architecture this package never builds (CodeFormer) with torch.jit.script,
    # which torch >= 2.10 deprecates with a FutureWarning printed by every command on import; only that one is hidden.
    warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)
    from . import archs, data, losses, metrics, models  # noqa: F401,E402  (explicit registration, no folder scan)
