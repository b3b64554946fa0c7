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

NLM_STRENGTHS = (6.0, 9.0, 13.5, 20.25)       # a geometric grid (ratio 1.5), extended while the best is at an end
BM3D_SIGMAS = (0.04, 0.06, 0.09, 0.135)
GRID_RATIO = 1.5
MAX_EXTENSIONS = 6


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
    clean) blocks -- the geometric grid is extended by its ratio while the best value sits at one of its ends, so
    the choice is a real optimum -- then apply it to the ``test`` blocks. Returns (parameter, outputs, seconds per
    test block)."""
    filter_fn, grid = FILTERS[name]
    on_validation = {}

    def evaluate(value):
        if value not in on_validation:
            on_validation[value] = np.mean([score(filter_fn(noisy, value), clean) for _, noisy, clean in validation])
        return on_validation[value]

    candidates = list(grid)
    for _ in range(MAX_EXTENSIONS):
        best = max(candidates, key=evaluate)
        if best == candidates[-1]:
            candidates.append(best * GRID_RATIO)
        elif best == candidates[0]:
            candidates.insert(0, best / GRID_RATIO)
        else:
            break
    parameter = max(candidates, key=evaluate)
    start = time.perf_counter()
    outputs = [filter_fn(noisy, parameter) for _, noisy, _ in test]
    return parameter, outputs, (time.perf_counter() - start) / max(len(test), 1)
