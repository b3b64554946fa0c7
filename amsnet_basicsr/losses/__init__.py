"""AMSNet's losses registered into BasicSR's LOSS_REGISTRY (explicit imports, no folder scan)."""
from .. import basicsr_compat  # noqa: F401  (the torchvision alias, before basicsr is imported)
from . import amsnet_loss  # noqa: F401
