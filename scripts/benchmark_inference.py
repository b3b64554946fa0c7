#!/usr/bin/env python
"""Inference benchmark of AMSNet (speed, overhead, memory, tiling): ``python scripts/benchmark_inference.py --help``.

The sections and flags are described in :mod:`amsnet_basicsr.benchmark`, where the logic lives.
"""
from amsnet_basicsr.benchmark import main

if __name__ == '__main__':
    main()
