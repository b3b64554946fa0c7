"""AMSNet's model registered into BasicSR's MODEL_REGISTRY (explicit imports, no folder scan)."""
from . import amsnet_model  # noqa: F401
from . import apbsn_model  # noqa: F401
