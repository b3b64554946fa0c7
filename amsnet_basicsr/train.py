"""Train AMSNet with BasicSR's pipeline, e.g. ``python amsnet_basicsr/train.py -opt options/train_AMSNet_Restormer.yml``.

Flags are BasicSR's: ``-opt``, ``--launcher``, ``--auto_resume``, ``--debug``, ``--force_yml``.
"""
import os

import amsnet_basicsr  # noqa: F401  (registers AMSNet into BasicSR; must precede the basicsr import)
from basicsr.train import train_pipeline


def main():
    # BasicSR resolves relative dataset/checkpoint paths and the --auto_resume lookup against the current
    # directory, so the current directory is also the root of experiments/<name>/ and tb_logger/<name>/
    # (the repo root in the README).
    train_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
