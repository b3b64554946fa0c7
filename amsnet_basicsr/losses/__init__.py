"""AMSNet's losses registered into BasicSR's LOSS_REGISTRY (explicit imports, no folder scan)."""
from . import amsnet_loss  # noqa: F401
