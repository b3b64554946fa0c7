"""AMSNet's datasets registered into BasicSR's DATASET_REGISTRY (explicit imports, no folder scan)."""
from .. import basicsr_compat  # noqa: F401  (the torchvision alias, before basicsr is imported)
from . import (
    benchmark_datasets,  # noqa: F401
    noisy_image_dataset,  # noqa: F401
)
