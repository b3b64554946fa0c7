"""Test AMSNet with BasicSR's pipeline, e.g. ``python amsnet_basicsr/test.py -opt options/test_SIDD.yml``."""
import os

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from basicsr.test import test_pipeline


def main():
    # BasicSR resolves relative dataset/checkpoint paths and the --auto_resume lookup against the current
    # directory, so the current directory is also the root of results/<name>/ (the repo root in the README).
    test_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
