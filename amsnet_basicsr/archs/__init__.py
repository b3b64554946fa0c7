"""Denoisers D_E registered into BasicSR's ARCH_REGISTRY (explicit imports, no folder scan)."""
from .. import basicsr_compat  # noqa: F401  (the torchvision alias, before basicsr is imported)
from . import (  # noqa: F401  # noqa: F401
    deamnet_arch,
    local_nafnet_arch,  # noqa: F401  (LocalNAFNet, the tile-invariant student: NAFNet with TLC)
    mask_aware_arch,  # noqa: F401  (MaskAwareDnCNN, the CPU demo's denoiser)
    nafnet_base_arch,  # noqa: F401  (NAFNetBase, AMSNet's NAFNet: NAFNet's baseline blocks)
    spandrel_arch,
    unet_arch,
)
from .size import size_multiple  # noqa: F401,E402  (each architecture's size multiple: amsnet.size_multiple: auto)
