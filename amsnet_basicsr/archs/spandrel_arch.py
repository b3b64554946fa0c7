"""Denoisers that BasicSR lacks, taken as-is from spandrel / spandrel_extra_arches.

The classes are registered under their official names with their official constructor arguments and
parameter names, so official weights load with ``strict=True``. BasicSR's own architectures (RIDNet,
SwinIR, ...) stay available as D_E through the same ``network_g: {type: ...}`` mechanism.

Each class keeps its spandrel architecture (:data:`SPANDREL_ARCHITECTURES`): spandrel's own ``load`` of the
network's weights declares its input size requirement (``ImageModelDescriptor.size_requirements.multiple_of``:
Restormer and DRUNet 8, NAFNet, DnCNN and SCUNet 1 -- NAFNet and SCUNet pad internally), which
``amsnet.size_multiple: auto`` reads (:func:`amsnet_basicsr.archs.size_multiple`).
"""
import warnings

import torch
from spandrel.architectures.DnCNN import DnCNN, DnCNNArch
from spandrel.architectures.DRUNet import DRUNet, DRUNetArch
from spandrel.architectures.NAFNet import NAFNet, NAFNetArch
from spandrel.architectures.SCUNet import SCUNet, SCUNetArch

from basicsr.utils.registry import ARCH_REGISTRY

with warnings.catch_warnings():
    # spandrel_extra_arches decorates an architecture this package never builds (CodeFormer) with torch.jit.script,
    # which torch >= 2.10 deprecates with a FutureWarning printed by every command on import; only that one is hidden.
    warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)
    from spandrel_extra_arches.architectures.Restormer import Restormer, RestormerArch

SPANDREL_ARCHITECTURES = {Restormer: RestormerArch, NAFNet: NAFNetArch, DnCNN: DnCNNArch, DRUNet: DRUNetArch,
                          SCUNet: SCUNetArch}
SPANDREL_DENOISERS = tuple(SPANDREL_ARCHITECTURES)

for _denoiser in SPANDREL_DENOISERS:
    ARCH_REGISTRY.register(_denoiser)


def spandrel_size_multiple(net: torch.nn.Module) -> int:
    """The size multiple spandrel declares for ``net`` (an instance of exactly one of :data:`SPANDREL_DENOISERS`):
    its architecture's ``load`` of the network's weights, on the CPU, with the global RNG left as it was (the
    descriptor's network is built, and initialised, only to be dropped)."""
    architecture = SPANDREL_ARCHITECTURES[type(net)]()
    state = {key: value.detach().cpu() for key, value in net.state_dict().items()}
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            descriptor = architecture.load(state)
    except Exception as error:  # spandrel's detection of the hyperparameters from the weights, on an unusual layout
        raise ValueError(f'auto: spandrel cannot read the size requirement of this {type(net).__name__} '
                         f'({type(error).__name__}: {error}); set it to the multiple its input sides need') from error
    return int(descriptor.size_requirements.multiple_of)
