"""Denoisers D_E registered into BasicSR's ARCH_REGISTRY (explicit imports, no folder scan)."""
from . import spandrel_arch, unet_arch  # noqa: F401
