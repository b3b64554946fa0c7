#!/usr/bin/env python
"""Convert an official AMSNet checkpoint into a BasicSR ``net_g`` file:
``python scripts/convert_official_checkpoint.py --help``.

The logic and the flags are in :mod:`amsnet_basicsr.convert`.
"""
import sys

from amsnet_basicsr.convert import main

if __name__ == '__main__':
    sys.exit(main())
