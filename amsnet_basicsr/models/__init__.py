"""AMSNet's model registered into BasicSR's MODEL_REGISTRY (explicit imports, no folder scan)."""
from .. import basicsr_compat  # noqa: F401  (the torchvision alias, before basicsr is imported)
from . import amsnet_model  # noqa: F401
