#!/usr/bin/env python
"""Reproduce AMSNet's ablation evidence on a CPU: ``python scripts/ablate.py --out results/ablation``.

The groups, flags and outputs are described in :mod:`amsnet_basicsr.ablation`, where the logic lives.
"""
import os.path as osp
import sys

from amsnet_basicsr.ablation import main

if __name__ == '__main__':
    sys.exit(main())
