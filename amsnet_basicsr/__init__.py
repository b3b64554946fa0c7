"""AMSNet (ECCV 2024) self-supervised real image denoising, as a BasicSR plugin.

Importing the package has no side effects: the pure-torch core (:mod:`~amsnet_basicsr.scheme`,
:mod:`~amsnet_basicsr.masks`, :mod:`~amsnet_basicsr.tiling`, :mod:`~amsnet_basicsr.camera_noise`) imports with torch
and numpy alone. ``import amsnet_basicsr.plugin`` registers the denoisers, datasets, losses, metrics and models
into BasicSR's registries.
"""
__version__ = '0.1.0'
