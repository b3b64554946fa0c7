"""Synthetic sRGB camera noise: signal dependent and spatially correlated, like real phone photos.

Used by the embedded demo (:mod:`amsnet_basicsr.demo`) and the convergence tests: AMSNet targets *real* sRGB
noise, whose two properties that matter to a self-supervised blind-spot scheme are

* it is signal dependent (Poisson shot noise + Gaussian read noise on the raw sensor values), and
* it is spatially correlated, because the camera's ISP demosaics the Bayer mosaic: every output pixel
  interpolates its neighbours' noisy samples. This is the correlation that the pixel-shuffle downsampling
  (PD) of AP-BSN / AMSNet breaks (Sec. 3.2 of the paper: stride 5 in training on SIDD).

The pipeline follows the "unprocessing" model of Brooks et al., "Unprocessing Images for Learned Raw
Denoising", CVPR 2019 (Sec. 3 there), reduced to the steps that shape the noise:

1. sRGB -> linear RGB: inverse sRGB gamma (Brooks: inverse tone map + inverse gamma; we use the exact sRGB
   transfer function and no tone map).
2. Optionally the inverse colour correction: linear RGB -> camera RGB by a 3x3 ``colour_matrix`` (Brooks Sec. 3.3,
   their ``rgb2cam``, rows summing to 1); :func:`random_camera` draws one. The camera's colour correction
   (its inverse, applied after demosaicking) mixes the channels, so the output noise is larger and correlated
   across channels. Without it the camera's channels are the sRGB primaries.
3. Inverse white balance: divide R by ``red_gain`` and B by ``blue_gain`` (Brooks Sec. 3.4). This makes the
   red and blue raw samples darker, hence noisier after the gains are applied again.
4. RGGB Bayer mosaic: keep one colour sample per pixel (Brooks Sec. 3.5).
5. Poisson-Gaussian noise on the raw samples x: ``y = shot_noise * Poisson(x / shot_noise) + N(0, read_noise)``,
   i.e. ``Var[y | x] = shot_noise * x + read_noise`` -- Brooks Eq. (2)-(3), where ``shot_noise`` and
   ``read_noise`` are the shot and read *variances* (lambda_shot, lambda_read).
6. Demosaic: bilinear interpolation (float, exact; the default), or OpenCV's ``cv2.cvtColor`` Bayer demosaic
   (``'opencv'`` bilinear or ``'opencv_ea'`` edge aware, on 16-bit quantised raw values).
7. White balance (multiply the gains back), colour correction (the inverse of ``colour_matrix``), clip to [0, 1],
   sRGB gamma; optionally quantise to 8 bits.

With bilinear demosaicking the noise of neighbouring pixels is strongly correlated at distance 1, weakly at
distance 2 (two interpolated pixels share one raw sample) and uncorrelated from distance 3 on; the edge-aware
OpenCV demosaic spreads it a little further. :func:`noise_correlation` measures it.

Pure numpy (+ OpenCV for the optional demosaics). Every random draw comes from an explicit
``numpy.random.Generator`` (or an int seed), so the same seed gives the same noisy image.
"""
import numpy as np

# Noise level of the demo: shot variance 0.01 per unit raw signal, read variance from Brooks et al.'s
# log-linear fit log(read) = 2.18 log(shot) + 1.20 (their Sec. 3.6, without the random offset).
DEFAULT_SHOT_NOISE = 0.01
DEFAULT_READ_NOISE = float(np.exp(2.18 * np.log(DEFAULT_SHOT_NOISE) + 1.20))

DEMOSAIC_METHODS = ('bilinear', 'opencv', 'opencv_ea')


def srgb_to_linear(image):
    """Inverse of the sRGB transfer function (IEC 61966-2-1), elementwise on [0, 1] values."""
    image = np.clip(image, 0.0, 1.0)
    return np.where(image <= 0.04045, image / 12.92, ((image + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(image):
    """The sRGB transfer function (IEC 61966-2-1), elementwise on [0, 1] values."""
    image = np.clip(image, 0.0, 1.0)
    return np.where(image <= 0.0031308, image * 12.92, 1.055 * np.power(image, 1.0 / 2.4) - 0.055)


def mosaic_rggb(image):
    """(H, W, 3) RGB -> (H, W) RGGB Bayer mosaic.

    R at (even, even), G at (even, odd) and (odd, even), B at (odd, odd).
    """
    bayer = np.empty(image.shape[:2], dtype=image.dtype)
    bayer[0::2, 0::2] = image[0::2, 0::2, 0]
    bayer[0::2, 1::2] = image[0::2, 1::2, 1]
    bayer[1::2, 0::2] = image[1::2, 0::2, 1]
    bayer[1::2, 1::2] = image[1::2, 1::2, 2]
    return bayer


def _convolve_reflect(image, kernel):
    """2-D 'same' correlation with mirror padding (symmetric kernels, so correlation == convolution)."""
    radius = kernel.shape[0] // 2
    padded = np.pad(image, radius, mode='reflect')
    height, width = image.shape
    out = np.zeros_like(image)
    for dy in range(kernel.shape[0]):
        for dx in range(kernel.shape[1]):
            if kernel[dy, dx] != 0:
                out += kernel[dy, dx] * padded[dy:dy + height, dx:dx + width]
    return out


def demosaic_bilinear(bayer):
    """Bilinear demosaic of an RGGB mosaic (H, W) -> (H, W, 3), float, mirror-padded at the borders.

    Each missing colour sample is the mean of its nearest same-colour neighbours (2 or 4 of them), the
    classic normalised-convolution formulation; known samples are kept unchanged.
    """
    height, width = bayer.shape
    masks = np.zeros((3, height, width), dtype=bayer.dtype)
    masks[0, 0::2, 0::2] = 1
    masks[1, 0::2, 1::2] = 1
    masks[1, 1::2, 0::2] = 1
    masks[2, 1::2, 1::2] = 1
    kernel_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=bayer.dtype) / 4
    kernel_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=bayer.dtype) / 4
    channels = [_convolve_reflect(bayer * masks[c], kernel_g if c == 1 else kernel_rb) for c in range(3)]
    return np.stack(channels, axis=-1)


def demosaic_opencv(bayer, edge_aware=False):
    """OpenCV Bayer demosaic of an RGGB mosaic in [0, 1] (quantised to 16 bits) -> (H, W, 3) float in [0, 1].

    OpenCV names Bayer patterns after the 2x2 block starting at pixel (1, 1), so an RGGB mosaic (R at (0, 0))
    is its ``BayerBG`` pattern; the tests check the colour order on a constant-colour image.
    """
    import cv2
    raw = np.round(np.clip(bayer, 0.0, 1.0) * 65535.0).astype(np.uint16)
    code = cv2.COLOR_BayerBG2RGB_EA if edge_aware else cv2.COLOR_BayerBG2RGB
    return cv2.cvtColor(raw, code).astype(np.float64) / 65535.0


def _as_generator(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError('camera_noise needs an explicit numpy Generator or int seed (rng=...)')
    return np.random.default_rng(rng)


def _as_float_image(image):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'camera_noise expects an (H, W, 3) RGB image, got shape {image.shape}')
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float64) / 65535.0
    image = image.astype(np.float64)
    if image.min() < 0.0 or image.max() > 1.0:
        raise ValueError('camera_noise expects float images in [0, 1] (or uint8 / uint16)')
    return image


def add_raw_noise(raw, rng, shot_noise=DEFAULT_SHOT_NOISE, read_noise=DEFAULT_READ_NOISE):
    """Poisson-Gaussian sensor noise on raw values (Brooks et al. Eq. 2-3): Var[y | x] = shot * x + read.

    ``y = shot_noise * Poisson(x / shot_noise) + N(0, read_noise)``; ``shot_noise`` and ``read_noise`` are
    variances, 0 disables a term. Negative values are kept (clipping happens after the ISP).
    """
    if shot_noise < 0 or read_noise < 0:
        raise ValueError(f'shot_noise and read_noise are variances and must be >= 0, got {shot_noise}, {read_noise}')
    rng = _as_generator(rng)
    raw = np.asarray(raw, dtype=np.float64)
    if shot_noise > 0:
        raw = shot_noise * rng.poisson(np.clip(raw, 0.0, None) / shot_noise)
    if read_noise > 0:
        raw = raw + rng.normal(0.0, np.sqrt(read_noise), size=raw.shape)
    return raw


def random_camera(rng, *, mixing=(0.1, 0.4)):
    """A random camera's white balance and colour matrix, as keyword arguments of :func:`add_camera_noise`.

    The gains follow Brooks et al.'s ``random_gains`` (Sec. 3.4): red U(1.9, 2.4), blue U(1.5, 1.9). The colour
    matrix stands in for their random ``rgb2cam`` (Sec. 3.3; they mix four cameras' published matrices): each
    channel of the camera sees its own primary plus U(``mixing``) of each other primary (overlapping spectral
    sensitivities), rows normalised to sum to 1 so that white stays white. Its inverse, the camera's colour
    correction, has negative off-diagonal terms (about -0.1 to -0.5), as real cameras' do.
    """
    rng = _as_generator(rng)
    matrix = np.eye(3) + rng.uniform(*mixing, size=(3, 3)) * (1 - np.eye(3))
    return dict(red_gain=float(rng.uniform(1.9, 2.4)), blue_gain=float(rng.uniform(1.5, 1.9)),
                colour_matrix=matrix / matrix.sum(axis=1, keepdims=True))


def add_camera_noise(image, rng, shot_noise=DEFAULT_SHOT_NOISE, read_noise=DEFAULT_READ_NOISE, red_gain=2.0,
                     blue_gain=1.7, demosaic='bilinear', quantize=True, colour_matrix=None):
    """Noisy sRGB image from a clean sRGB image via the unprocessing camera model (module docstring).

    Args:
        image: (H, W, 3) RGB, uint8 / uint16, or float in [0, 1].
        rng: ``numpy.random.Generator`` or int seed (required: the noise is always reproducible).
        shot_noise: shot-noise variance per unit raw signal (Brooks' lambda_shot); 0 disables it.
        read_noise: read-noise variance (Brooks' lambda_read); 0 disables it.
        red_gain, blue_gain: white-balance gains removed before and re-applied after the noise (Brooks Sec. 3.4).
        demosaic: 'bilinear' (float, default), 'opencv' or 'opencv_ea' (cv2.cvtColor Bayer demosaic).
        quantize: round the result to 8-bit levels (as a camera's 8-bit sRGB output, e.g. SIDD's PNGs).
        colour_matrix: the camera's 3x3 linear RGB -> camera RGB matrix (rows summing to 1; Brooks' ``rgb2cam``),
            or None (the camera's channels are the sRGB primaries). :func:`random_camera` draws one.

    Returns:
        float32 (H, W, 3) noisy image in [0, 1].
    """
    if shot_noise < 0 or read_noise < 0:
        raise ValueError(f'shot_noise and read_noise are variances and must be >= 0, got {shot_noise}, {read_noise}')
    if demosaic not in DEMOSAIC_METHODS:
        raise ValueError(f'demosaic must be one of {DEMOSAIC_METHODS}, got {demosaic!r}')
    rng = _as_generator(rng)
    gains = np.array([red_gain, 1.0, blue_gain])
    linear = srgb_to_linear(_as_float_image(image))
    if colour_matrix is not None:
        colour_matrix = np.asarray(colour_matrix, dtype=np.float64)
        if colour_matrix.shape != (3, 3) or not np.allclose(colour_matrix.sum(axis=1), 1.0):
            raise ValueError('colour_matrix must be a 3x3 matrix whose rows sum to 1 (white stays white)')
        linear = linear @ colour_matrix.T
    linear = linear / gains
    raw = add_raw_noise(mosaic_rggb(linear), rng, shot_noise, read_noise)
    if demosaic == 'bilinear':
        rgb = demosaic_bilinear(raw)
    else:
        rgb = demosaic_opencv(raw, edge_aware=demosaic == 'opencv_ea')
    rgb = rgb * gains
    if colour_matrix is not None:
        rgb = rgb @ np.linalg.inv(colour_matrix).T
    noisy = linear_to_srgb(np.clip(rgb, 0.0, 1.0))
    if quantize:
        noisy = np.round(noisy * 255.0) / 255.0
    return noisy.astype(np.float32)


def noise_correlation(noise, max_distance=6):
    """Pearson correlation of a noise field with itself shifted by d = 1..max_distance pixels.

    ``noise`` is (H, W) or (H, W, C) (e.g. noisy - clean); horizontal and vertical shifts are pooled, channels
    are treated separately and pooled. Returns a float64 array ``corr`` with ``corr[d - 1]`` for distance d.
    """
    noise = np.asarray(noise, dtype=np.float64)
    if noise.ndim == 2:
        noise = noise[..., None]
    noise = noise - noise.mean(axis=(0, 1), keepdims=True)
    corr = []
    for d in range(1, max_distance + 1):
        pairs = [(noise[:, :-d], noise[:, d:]), (noise[:-d], noise[d:])]
        num = sum((a * b).sum() for a, b in pairs)
        den = sum(np.sqrt((a * a).sum() * (b * b).sum()) for a, b in pairs)
        corr.append(num / den)
    return np.array(corr)


def camera_noise_pair(image, rng, **kwargs):
    """(noisy, clean) float32 images for ``image``: ``add_camera_noise(image, rng, **kwargs)`` and the same camera
    pipeline without sensor noise (shot = read = 0), i.e. what the camera would output for a noise-free exposure.

    The clean image plays the role of SIDD's ground truth: same mosaic / demosaic / gamma, no noise, so PSNR
    against it measures denoising and not the demosaicking that the noisy image also went through.
    """
    kwargs = dict(kwargs)
    noisy = add_camera_noise(image, rng, **kwargs)
    kwargs.update(shot_noise=0.0, read_noise=0.0)
    clean = add_camera_noise(image, 0, **kwargs)
    return noisy, clean
