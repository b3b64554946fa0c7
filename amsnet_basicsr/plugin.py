"""``import amsnet_basicsr.plugin`` registers AMSNet into BasicSR: its denoisers (ARCH_REGISTRY), datasets
(DATASET_REGISTRY), losses (LOSS_REGISTRY), metrics (METRIC_REGISTRY) and models (MODEL_REGISTRY).

Import it before building anything from an options file, and before your own first ``import basicsr``: it applies
:mod:`amsnet_basicsr.basicsr_compat` first, without which basicsr 1.4.2 does not import on current torchvision.
"""
from . import (  # noqa: F401  (explicit registration, no folder scan)
    archs,  # first: it applies basicsr_compat (the torchvision alias) before anything imports basicsr
    basicsr_compat,
    data,
    losses,
    metrics,
    models,
)
