"""The classical filters a user would pick instead of AMSNet, tuned the way AMSNet's settings are: on validation
blocks only, then applied once to the held-apart test blocks.

* OpenCV's non-local means (``cv2.fastNlMeansDenoisingColored``, 7x7 patches, 21x21 search), strength ``h``;
* BM3D (the ``bm3d`` package, ``bm3d_rgb`` on RGB in [0, 1]), noise standard deviation ``sigma``.

Scores use the demo's quantisation and BasicSR's metrics, so they sit in the same table as AMSNet's.
"""
import time

import bm3d
import cv2
import numpy as np

NLM_STRENGTHS = (3, 5, 7, 9, 12, 15, 20)
BM3D_SIGMAS = (0.02, 0.03, 0.04, 0.06, 0.08)


def nlm(noisy, strength):
    """(H, W, 3) float RGB in [0, 1] -> the same, through OpenCV's coloured NLM on the 8-bit image."""
    image = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
    return cv2.fastNlMeansDenoisingColored(image, None, strength, strength, 7, 21).astype(np.float32) / 255


def bm3d_filter(noisy, sigma):
    """(H, W, 3) float RGB in [0, 1] -> the same, through BM3D for colour images."""
    return np.clip(bm3d.bm3d_rgb(noisy, sigma), 0, 1).astype(np.float32)


FILTERS = {'OpenCV NLM': (nlm, NLM_STRENGTHS), 'BM3D': (bm3d_filter, BM3D_SIGMAS)}


def tune_and_apply(name, validation, test, score):
    """Pick the parameter of filter ``name`` with the best mean ``score`` (PSNR) on the ``validation`` (key, noisy,
    clean) blocks, then apply it to the ``test`` blocks. Returns (parameter, outputs, seconds per test block)."""
    filter_fn, grid = FILTERS[name]
    parameter = max(grid, key=lambda value: np.mean([score(filter_fn(noisy, value), clean)
                                                     for _, noisy, clean in validation]))
    start = time.perf_counter()
    outputs = [filter_fn(noisy, parameter) for _, noisy, _ in test]
    return parameter, outputs, (time.perf_counter() - start) / max(len(test), 1)
