"""The embedded demo data, shared by the demo (:mod:`amsnet_basicsr.demo`) and the ablation (benchmarks/ablation.py).

scikit-image's bundled sample photos (no download) get realistic sRGB camera noise (:mod:`amsnet_basicsr.camera_noise`:
signal dependent, spatially correlated by demosaicking; Brooks et al. 2019) and are split three ways, by photo:

* training (``TRAIN_IMAGES``): only their NOISY versions exist (:func:`training_images`); AMSNet is self-supervised
  (paper Sec. 3), so no clean pixel of a training photo is ever made;
* validation (``VAL_IMAGE``): noisy/clean blocks (:func:`validation_blocks`) for choosing settings (the recipes,
  the classical filters' strengths); its noisy version alone (:func:`noisy_photo`) may be trained on, like any
  noisy photo;
* test (``TEST_IMAGES``): noisy/clean blocks (:func:`test_blocks`), held apart: they tune nothing.

Every photo is first reduced to at most ``max_side`` pixels (the callers' size budget), then enlarged ``ENLARGE``
times (bicubic): the sample photos are small, downsampled pictures with detail down to single pixels, while a
phone's full-resolution capture is soft at the pixel scale (lens, demosaicking), and that softness is what lets
pixel-shuffle sub-images (every 2nd / 5th pixel, paper Sec. 3.1) still look like the scene. The noisy and clean
versions of a photo come from the same enlarged image. The noise of each photo is its own reproducible stream of
``(seed, photo)``.

Images are (H, W, 3) float32 RGB in [0, 1] on the 8-bit grid (the camera's 8-bit output, like SIDD's PNGs).
Pure numpy / OpenCV / scikit-image; nothing here imports BasicSR.
"""
import numpy as np

from . import camera_noise

TRAIN_IMAGES = ('rocket', 'motorcycle_left', 'immunohistochemistry', 'hubble_deep_field', 'retina')
VAL_IMAGE = 'coffee'
TEST_IMAGES = ('astronaut', 'chelsea')
ENLARGE = 2


def load_sample(name):
    """A bundled scikit-image sample photo as (H, W, 3) uint8 RGB (``motorcycle_left``: the stereo pair's left view)."""
    import skimage.data
    image = skimage.data.stereo_motorcycle()[0] if name == 'motorcycle_left' else getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def photo(name, *, max_side, enlarge=ENLARGE):
    """The sample photo ``name`` reduced to at most ``max_side`` pixels (area), then enlarged ``enlarge`` times
    (bicubic; 1 keeps the photo's own sharpness), as uint8 RGB (module docstring)."""
    import cv2
    image = load_sample(name)
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
        height, width = image.shape[:2]
    if enlarge == 1:
        return np.ascontiguousarray(image)
    return cv2.resize(image, (width * enlarge, height * enlarge), interpolation=cv2.INTER_CUBIC)


def noise_rng(seed, name):
    """An independent, reproducible noise stream per (seed, photo)."""
    return np.random.default_rng([seed, sum(ord(ch) * 31 ** i for i, ch in enumerate(name)) % (2 ** 31)])


def block_corners(height, width, *, size, limit=None):
    """Top-left corners of non-overlapping ``size`` x ``size`` blocks, centred in the image; with ``limit``, that
    many of them spread evenly over the image (the middle one when ``limit`` is 1)."""
    rows, cols = max(1, height // size), max(1, width // size)
    top0, left0 = (height - rows * size) // 2, (width - cols * size) // 2
    corners = [(top0 + r * size, left0 + c * size) for r in range(rows) for c in range(cols)]
    if limit == 1:
        return [corners[len(corners) // 2]]
    if limit and limit < len(corners):
        return [corners[i] for i in np.unique(np.linspace(0, len(corners) - 1, limit).round().astype(int))]
    return corners


def noisy_photo(name, *, seed, max_side):
    """The noisy camera output of the photo ``name`` alone (no clean version is made); the noisy half of
    :func:`paired_blocks`' photo for the same ``seed`` and ``max_side``."""
    return camera_noise.add_camera_noise(photo(name, max_side=max_side), noise_rng(seed, name))


def training_images(*, seed, max_side, names=TRAIN_IMAGES):
    """[(photo name, noisy image)] of the training photos: the noisy versions only."""
    unknown = sorted(set(names) - set(TRAIN_IMAGES))
    if unknown:
        raise ValueError(f'{unknown} are not training photos; the training split is {TRAIN_IMAGES}')
    return [(name, noisy_photo(name, seed=seed, max_side=max_side)) for name in names]


def paired_blocks(names, *, seed, max_side, block, limit=None):
    """[(key, noisy block, clean block)] cut from ``names`` (at most ``limit`` blocks per photo), like SIDD's
    validation blocks. ``key`` is ``<photo>_<top>_<left>``; the clean block is the camera's output for a
    noise-free exposure (:func:`camera_noise.camera_noise_pair`)."""
    if set(names) & set(TRAIN_IMAGES):
        raise ValueError(f'{sorted(set(names) & set(TRAIN_IMAGES))} are training photos: they have no clean version')
    blocks = []
    for name in names:
        noisy, clean = camera_noise.camera_noise_pair(photo(name, max_side=max_side), noise_rng(seed, name))
        size = min(block, *noisy.shape[:2])
        for top, left in block_corners(*noisy.shape[:2], size=size, limit=limit):
            window = np.s_[top:top + size, left:left + size]
            blocks.append((f'{name}_{top:04d}_{left:04d}', noisy[window], clean[window]))
    return blocks


def validation_blocks(*, seed, max_side, block, limit=1):
    """Noisy/clean blocks of the validation photo ``VAL_IMAGE`` (:func:`paired_blocks`)."""
    return paired_blocks((VAL_IMAGE,), seed=seed, max_side=max_side, block=block, limit=limit)


def test_blocks(*, seed, max_side, block, limit, names=TEST_IMAGES):
    """Noisy/clean blocks of the held-apart test photos (:func:`paired_blocks`)."""
    unknown = sorted(set(names) - set(TEST_IMAGES))
    if unknown:
        raise ValueError(f'{unknown} are not test photos; the test split is {TEST_IMAGES}')
    return paired_blocks(names, seed=seed, max_side=max_side, block=block, limit=limit)
