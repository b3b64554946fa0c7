"""Golden outputs: ``amsnet-denoise`` and ``test.py`` on fixed checkpoints (``tests/golden/*.pth``: a mask-scheme
MaskAwareDnCNN run as B-E, MMDB + R^3 over 32-px tiles, and a single-pass NAFNet student) and a fixed noisy photo give
the bytes they gave when the goldens were written (commit "Golden outputs", torch 2.14.1 CPU). Any refactoring of
the commands, the options or the inference path must leave them alone.

Tolerance: none on the build that wrote them; another torch build may round a float differently, so the check
allows a difference of 1 grey level on at most 0.5% of the values (none was seen).
"""
import logging
import shutil
import sys

import cv2
import numpy as np
import pytest

from amsnet_basicsr import denoise, pipelines

from helpers import GOLDEN
from helpers import GOLDEN_NETWORKS as NETWORKS
from helpers import GOLDEN_SCHEMES as SCHEMES


def options(kind, photos=None):
    return {'name': f'golden_{kind}', 'model_type': 'AMSNetModel', 'num_gpu': 0, 'scale': 1, 'amsnet': SCHEMES[kind],
            'network_g': dict(NETWORKS[kind]),
            'path': {'pretrain_network_g': str(GOLDEN / f'{kind}.pth'), 'param_key_g': 'params',
                     'strict_load_g': True},
            'datasets': {'test_1': {'name': 'photos', 'type': 'PairedFolderDataset', 'dataroot_lq': str(photos)}},
            'val': {'save_img': True, 'suffix': 'out'}}


def assert_golden(path, golden):
    output, expected = cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.imread(str(golden), cv2.IMREAD_UNCHANGED)
    difference = np.abs(output.astype(int) - expected.astype(int))
    assert output.shape == expected.shape and difference.max() <= 1 and (difference > 0).mean() <= 0.005, (
        f'{path.name}: max {difference.max()}, {(difference > 0).mean():.2%} of the values differ from {golden.name}')


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / 'photos'
    folder.mkdir()
    shutil.copy(GOLDEN / 'noisy.png', folder / 'noisy.png')
    return folder


@pytest.mark.parametrize('kind', sorted(NETWORKS))
def test_amsnet_denoise_gives_the_golden_bytes(tmp_path, photos, write_options, kind):
    option_file = write_options(tmp_path / 'denoise.yml', options(kind))
    assert denoise.main([str(photos), str(tmp_path / 'out'), '-opt', str(option_file), '--quiet']) == 0
    assert_golden(tmp_path / 'out' / 'noisy.png', GOLDEN / f'denoise_{kind}.png')


@pytest.mark.parametrize('kind', sorted(NETWORKS))
def test_test_py_gives_the_golden_bytes(tmp_path, photos, write_options, kind, monkeypatch):
    from basicsr.test import test_pipeline
    from basicsr.utils import logger as basicsr_logger
    option_file = write_options(tmp_path / 'test.yml', options(kind, photos))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['amsnet_basicsr/test.py', '-opt', str(option_file)])
    try:
        assert pipelines.run(test_pipeline, 'amsnet_basicsr/test.py') == 0
    finally:  # BasicSR's logger is set up once per process: close this run's log file
        logger = logging.getLogger('basicsr')
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        basicsr_logger.initialized_logger.pop('basicsr', None)
    saved = tmp_path / 'results' / f'golden_{kind}' / 'visualization' / 'photos' / 'noisy_out.png'
    assert_golden(saved, GOLDEN / f'denoise_{kind}.png')
