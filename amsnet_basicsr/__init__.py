"""AMSNet (ECCV 2024) as a BasicSR plugin.

Importing this package registers its denoisers, datasets, losses and model into BasicSR's registries.
"""
import sys

try:
    import torchvision.transforms.functional_tensor  # noqa: F401  (torchvision < 0.17 still ships it)
except ImportError:
    # basicsr 1.4.2 (basicsr/data/degradations.py) imports `torchvision.transforms.functional_tensor`, which
    # torchvision renamed to `_functional_tensor` and then removed, so a bare `import basicsr` fails on current
    # torchvision. Alias the module once, here, before anything imports basicsr.
    import torchvision.transforms._functional_tensor as _functional_tensor
    sys.modules['torchvision.transforms.functional_tensor'] = _functional_tensor

from . import archs, data, losses, metrics, models  # noqa: E402,F401  (explicit registration, after the alias)

__version__ = '0.1.0'
