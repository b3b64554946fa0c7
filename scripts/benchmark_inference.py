#!/usr/bin/env python
"""Inference benchmark of AMSNet (speed, overhead, memory, tiling): ``python scripts/benchmark_inference.py --help``.

The sections and flags are described in :mod:`amsnet_basicsr.benchmark`, where the logic lives.
"""
import sys

from amsnet_basicsr.benchmark import main
from amsnet_basicsr.errors import run_command

if __name__ == '__main__':
    sys.exit(run_command('benchmark_inference.py', main))
