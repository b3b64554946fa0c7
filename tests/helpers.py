"""Plain constants and functions of the test suite (paths, the tiny network, synthetic scenes and noise, a MATLAB
v7.3 writer): for module-level use (parametrize lists, tables of cases) and inside fixtures and other helpers;
``tests/conftest.py`` puts this folder on ``sys.path``. What a test needs set up for it (folders in ``tmp_path``,
option files, the tiny training run, processes) is a fixture of ``tests/conftest.py``."""
from pathlib import Path

import cv2
import h5py  # imported at collection: its first import asks `uname -p` (a process), refused in a fast test
import numpy as np

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / 'tests' / 'golden'  # fixed checkpoints, photo and outputs (tests/cli/test_golden.py)
TINY_NET = {'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': 3, 'act_mode': 'R'}  # of the tiny training runs


def correlated_noisy(clean, sigma, rng):
    """Clean image plus Gaussian noise blurred over 3x3 (spatially correlated like demosaicked sRGB noise)."""
    noise = cv2.GaussianBlur(rng.normal(0, 1, clean.shape).astype(np.float32), (3, 3), 0.8)
    return np.clip(clean + sigma * noise / noise.std(), 0, 1)


def smooth_scene(height, width, rng):
    """A smooth colourful test scene in [0, 1] (HWC, RGB)."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    phases = rng.uniform(0, 2 * np.pi, 3)
    return np.stack([0.5 + 0.35 * np.sin(4 * xx + 3 * yy + p) for p in phases], axis=-1).astype(np.float32)


def save_v73(path, name, array):
    """A MATLAB v7.3 (HDF5) variable: MATLAB's column-major array = the C array with reversed axes."""
    with h5py.File(path, 'w') as f:
        f.create_dataset(name, data=np.ascontiguousarray(array.transpose(tuple(reversed(range(array.ndim))))))


# the networks of the golden checkpoints (tests/golden/*.pth): a mask-scheme MaskAwareDnCNN run as B-E over tiles,
# and a single-pass NAFNet student; the scheme each runs with
GOLDEN_NETWORKS = {'mask': {'type': 'MaskAwareDnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': 3},
                   'student': {'type': 'NAFNet', 'img_channel': 3, 'width': 4, 'middle_blk_num': 1,
                               'enc_blk_nums': [1, 1], 'dec_blk_nums': [1, 1]}}
GOLDEN_SCHEMES = {'mask': {'test_stride': 2, 'num_branches': 2, 'seed': 3,
                           'r3': {'enabled': True, 'times': 2, 'prob': 0.16}, 'tile': {'size': 32, 'overlap': 8}},
                  'student': {'single_pass': True, 'size_multiple': 4, 'tile': {'size': 32, 'overlap': 8}}}
