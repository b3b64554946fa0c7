#!/usr/bin/env python
"""Crop SIDD-Medium sRGB NOISY images into 512x512 sub-images in a BasicSR LMDB:
``python scripts/prepare_sidd.py --help``.

The logic and the flags are in :mod:`amsnet_basicsr.data.sidd_prepare`.
"""
import sys

from amsnet_basicsr.data.sidd_prepare import main

if __name__ == '__main__':
    sys.exit(main())
