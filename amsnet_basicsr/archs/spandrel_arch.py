"""Denoisers that BasicSR lacks, taken as-is from spandrel / spandrel_extra_arches.

The classes are registered under their official names with their official constructor arguments and
parameter names, so official weights load with ``strict=True``. BasicSR's own architectures (RIDNet,
SwinIR, ...) stay available as D_E through the same ``network_g: {type: ...}`` mechanism.
"""
from basicsr.utils.registry import ARCH_REGISTRY
from spandrel.architectures.DnCNN import DnCNN
from spandrel.architectures.DRUNet import DRUNet
from spandrel.architectures.NAFNet import NAFNet
from spandrel.architectures.SCUNet import SCUNet
from spandrel_extra_arches.architectures.Restormer import Restormer

SPANDREL_DENOISERS = (Restormer, NAFNet, DnCNN, DRUNet, SCUNet)

for _denoiser in SPANDREL_DENOISERS:
    ARCH_REGISTRY.register(_denoiser)
