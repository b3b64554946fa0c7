"""The classical filters a user would pick instead of AMSNet, tuned the way AMSNet's settings are: on validation
blocks only, then applied once to the held-apart test blocks.

* OpenCV's non-local means (``cv2.fastNlMeansDenoisingColored``, 7x7 patches, 21x21 search), strength ``h``;
* BM3D (the ``bm3d`` package, ``bm3d_rgb`` on RGB in [0, 1]), noise standard deviation ``sigma``.

Both follow each image's noise level, as a careful user sets them: ``h`` and ``sigma`` are a tuned *factor* times
scikit-image's noise estimate of that image (:func:`noise_sigma`), so a noisier camera gets a stronger filter
without re-tuning. The estimate (wavelet MAD) reads the white-noise part only -- about a quarter of the true
standard deviation on demosaicked noise -- and the factor absorbs that.

Scores use the demo's quantisation and BasicSR's metrics, so they sit in the same table as AMSNet's.
"""
import time

import bm3d
import cv2
import numpy as np

# h / sigma-hat and sigma / sigma-hat: geometric grids (ratio 1.5), extended while the best is at an end
NLM_FACTORS = (2.0, 3.0, 4.5, 6.75)
BM3D_FACTORS = (4.0, 6.0, 9.0, 13.5)
GRID_RATIO = 1.5
MAX_EXTENSIONS = 6


def noise_sigma(noisy):
    """scikit-image's estimate of the noise standard deviation of (H, W, 3) RGB in [0, 1], averaged over channels."""
    from skimage.restoration import estimate_sigma
    return float(estimate_sigma(noisy, channel_axis=-1, average_sigmas=True))


def nlm(noisy, factor):
    """(H, W, 3) float RGB in [0, 1] -> the same, through OpenCV's coloured NLM on the 8-bit image, with
    ``h = factor * noise_sigma`` (grey levels)."""
    image = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
    strength = factor * noise_sigma(noisy) * 255
    return cv2.fastNlMeansDenoisingColored(image, None, strength, strength, 7, 21).astype(np.float32) / 255


def bm3d_filter(noisy, factor):
    """(H, W, 3) float RGB in [0, 1] -> the same, through BM3D for colour images, ``sigma = factor * noise_sigma``."""
    return np.clip(bm3d.bm3d_rgb(noisy, factor * noise_sigma(noisy)), 0, 1).astype(np.float32)


FILTERS = {'OpenCV NLM': (nlm, NLM_FACTORS), 'BM3D': (bm3d_filter, BM3D_FACTORS)}


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
