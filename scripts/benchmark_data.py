#!/usr/bin/env python
"""Training-data throughput, LMDB crops vs full-size PNGs: ``python scripts/benchmark_data.py --help``.

The logic and the flags are in :mod:`amsnet_basicsr.data.throughput`.
"""
import sys

from amsnet_basicsr.data.throughput import main
from amsnet_basicsr.errors import run_command

if __name__ == '__main__':
    sys.exit(run_command('benchmark_data.py', main))
