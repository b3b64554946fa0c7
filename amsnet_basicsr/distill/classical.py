"""BM3D as a second teacher of stage ``distill``, given the noise's measured correlation.

AMSNet's own teacher (B-E: MMDB, Eq. 6-8, then R^3) learns from a few minutes of CPU training; BM3D needs no training
and is strong when it is told the noise's power spectral density (PSD) -- BM3D for correlated noise, Mäkinen, Azzari
and Foi, "Collaborative Filtering of Correlated Noise: Exact Transform-Domain Variance for Improved Shrinkage and
Patch Matching", IEEE TIP 2020, as the ``bm3d`` package implements it. Real sRGB noise is correlated across pixels
(demosaicking, in-camera noise reduction, sharpening) and across channels (the camera's colour matrix), so a single
standard deviation misleads it. The PSD is measured here from the noisy crops alone:

1. :func:`estimate_noise`: each crop is cut into ``block`` x ``block`` blocks; in the flattest ``fraction`` of them
   (the least signal left after a plane fit, judged on the crop blurred so that the noise averages out; blocks near
   black or white, where the noise is clipped, are left out) the plane-fit residual is the noise. Its 3 x 3 channel
   covariance gives a colour transform that decorrelates the channels (whitening, then BM3D's opponent transform, so
   block matching runs on a luminance-like first channel); in that space each channel's autocorrelation is measured
   out to ``radius`` pixels and tapered (Bartlett), which keeps the PSD non-negative. A denoiser's residual is no
   substitute: AMSNet's teacher leaves the noise's correlated part in its output, so its residual measured
   correlations of 0.25 / 0.03 at lags 2 / 3 where the noise has 0.54 / 0.32 (validation photo, in-camera noise).
2. :func:`bm3d_denoise`: the noisy image in that colour space through BM3D's first stage (collaborative
   hard-thresholding, ``bm3d.bm3d`` with ``BM3DStages.HARD_THRESHOLDING``) with the PSD of the measured
   autocorrelation (times ``psd_scale``), then back to RGB. BM3D's second stage (collaborative Wiener filtering with
   the first stage's estimate as its pilot) is left out: given the measured PSD it lowered the estimate on every
   pipeline of the validation photo (by 0.05-0.55 dB on its 128-px tiles) and on most training photos, at 2.7x the
   time (docs/distillation.md, "BM3D's first stage alone").
3. The noise's mean as a function of the level (:attr:`NoiseModel.mean_bias`, :func:`mean_bias`): camera noise has
   zero mean before the tone curve, not in sRGB (a concave curve lowers the mean, clipping at black raises it), while
   the median of a level's values survives any monotone curve, so in a flat block the residual's mean minus its
   median (minus the median, as the plane fit leaves zero mean) is that block's bias. Measured on the flattest
   ``fraction`` of all the blocks of step 1, near-black and near-white ones included (the median is robust to
   clipping; blocks clipped flat are left out), in :data:`BIAS_LEVELS` bins of their level. ``amsnet.anchor_bias``
   subtracts it from the means the student keeps (:func:`amsnet_basicsr.inference.anchor_low_frequencies`).
   It recovers part of the mean only: shot noise is skewed in linear light already, and in-camera noise reduction or
   JPEG after the tone curve average or quantise the skew away before it is seen here (docs/distillation.md, "The
   noise's mean", has the validation figures; benchmarks/results/noise_mean.md, what the rest costs).

:func:`amsnet_basicsr.distill.targets.prepare_targets` mixes this output into the teacher's target with the weight
``classical_teacher.weight``; the student still runs once per image. Pure numpy + ``bm3d`` (and OpenCV's Gaussian
blur); no clean image, no global state.
"""
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Mapping, Tuple

import numpy as np

from ..errors import OptionError

BM3D_STAGES = 'hard thresholding'  # recorded with the targets: those of both stages are not resumed
SECTION = 'classical_teacher'  # the options section of stage distill; its keys and defaults:
DEFAULTS = dict(weight=0.5, psd_scale=1.5, noise_crops=256)
VALID = {'weight': (lambda value: 0 <= value <= 1, 'a number in [0, 1]'),
         'psd_scale': (lambda value: value > 0, 'a positive number'),
         'noise_crops': (lambda value: isinstance(value, int) and value >= 1, 'an integer >= 1')}

# BM3D's opponent colour transform (bm3d.rgb_to 'opp'): rows average, red - blue, and green against red + blue
OPPONENT = np.array([[1 / 3, 1 / 3, 1 / 3], [1 / 2, 0, -1 / 2], [1 / 4, -1 / 2, 1 / 4]])
RADIUS = 8  # lags measured; real in-camera noise is correlated out to 4-6 px
# Chosen on the validation photo's 128-px crops (docs/distillation.md): blocks of 32 px, the flattest quarter
FLAT_BLOCK = 32
FLAT_FRACTION = 0.25
CLIPPED = 0.04  # a block whose mean is this close to 0 or 1 in some channel holds clipped noise
# bins of the level, [0, 1] cut evenly, for the noise's mean (step 3): measured, 16 left a perfect denoiser less cast
# than 8 on the validation and training photos, with a smaller worst case than 32 (benchmarks/results/noise_mean.md)
BIAS_LEVELS = 16
BIAS_MIN_BLOCKS = 3  # a bin with fewer blocks takes its value from its neighbours
SATURATED = 0.5 / 255  # a block channel whose residual spreads less than this holds no noise (clipped flat)


@dataclass(frozen=True)
class NoiseModel:
    """The noise of one camera as BM3D needs it: ``transform`` (3 x 3, RGB -> a space where the channels' noise is
    uncorrelated) and ``autocorrelation`` ((2r+1, 2r+1, 3): per channel of that space, lag (0, 0) at the centre,
    Bartlett-tapered), and ``mean_bias``: rows ``(level, R, G, B)``, the noise's mean at that level of each channel,
    in [0, 1] units (module docstring, step 3; ``amsnet.anchor_bias``)."""
    transform: np.ndarray
    autocorrelation: np.ndarray
    mean_bias: Tuple[Tuple[float, float, float, float], ...] = ()

    def as_dict(self) -> dict:
        """JSON-ready (recorded with the targets, so a restart with another estimate starts again)."""
        return dict(transform=np.round(self.transform, 8).tolist(),
                    autocorrelation=np.round(self.autocorrelation, 10).tolist(),
                    mean_bias=[list(row) for row in self.mean_bias])

    def psd(self, height: int, width: int) -> np.ndarray:
        """The (height, width, 3) PSD of the tapered autocorrelation in ``bm3d``'s convention (white noise of
        variance s^2 has the constant PSD s^2 * height * width)."""
        radius = self.autocorrelation.shape[0] // 2
        circular = np.zeros((height, width, self.autocorrelation.shape[2]))
        lags = np.arange(-radius, radius + 1)
        circular[np.ix_(lags % height, lags % width)] = self.autocorrelation
        psd = np.real(np.fft.fft2(circular, axes=(0, 1))) * height * width
        return np.maximum(psd, 1e-6 * psd.mean())


def decorrelating_transform(covariance: np.ndarray) -> np.ndarray:
    """3 x 3: RGB -> BM3D's opponent space after whitening the noise ``covariance`` (the opponent rows are
    orthogonal, so the channels' noise stays uncorrelated), scaled to keep the mean noise variance."""
    values, vectors = np.linalg.eigh(covariance)
    whitening = vectors @ np.diag(np.maximum(values, 1e-12 * values.max()) ** -0.5) @ vectors.T
    return OPPONENT @ whitening * np.sqrt(np.trace(covariance) / 3)


def autocorrelation(residual: np.ndarray, *, radius: int) -> Tuple[np.ndarray, np.ndarray]:
    """(sums of products, counts) at the lags |dy|, |dx| <= radius of the zero-mean (H, W, C) ``residual``, each
    channel alone (linear, not circular: zero padding), for pooling over crops."""
    height, width, channels = residual.shape
    shape = (height + radius, width + radius)
    spectrum = np.fft.rfft2(residual, s=shape, axes=(0, 1))
    products = np.fft.irfft2(np.abs(spectrum) ** 2, s=shape, axes=(0, 1))
    lags = np.arange(-radius, radius + 1)
    sums = products[np.ix_(lags % shape[0], lags % shape[1])]
    counts = np.outer(height - np.abs(lags), width - np.abs(lags))[..., None]
    return sums, np.broadcast_to(counts, sums.shape)


def plane_fit_residual_operator(block: int) -> np.ndarray:
    """(block^2, block^2): a flattened ``block`` x ``block`` channel -> its residual after a least-squares plane fit."""
    rows, cols = np.mgrid[0:block, 0:block]
    design = np.stack([rows.ravel(), cols.ravel(), np.ones(block * block)], axis=1)
    return np.eye(block * block) - design @ np.linalg.pinv(design)


def block_residuals(crop: np.ndarray, off_plane: np.ndarray) -> list:
    """(flatness, mean, residual) of every block of the (H, W, 3) float RGB ``crop``, the block side given by
    ``off_plane`` (:func:`plane_fit_residual_operator`): the residual of a per-channel plane fit is the noise where
    the block is flat; flatness is the mean square of the same fit's residual on the crop blurred by a Gaussian of 2 px
    (mostly signal); the mean is the block's per channel."""
    import cv2
    block = int(round(np.sqrt(off_plane.shape[0])))
    crop = np.asarray(crop, np.float64)
    blurred = cv2.GaussianBlur(crop, (0, 0), 2.0)
    found = []
    for top in range(0, crop.shape[0] - block + 1, block):
        for left in range(0, crop.shape[1] - block + 1, block):
            pixels = crop[top:top + block, left:left + block].reshape(-1, 3)
            signal = off_plane @ blurred[top:top + block, left:left + block].reshape(-1, 3)
            found.append((float((signal ** 2).mean()), pixels.mean(0), (off_plane @ pixels).reshape(block, block, 3)))
    return found


def near_black_or_white(mean: np.ndarray) -> bool:
    """Whether a block of per-channel ``mean`` holds clipped noise (within :data:`CLIPPED` of 0 or 1)."""
    return bool((mean < CLIPPED).any() or (mean > 1 - CLIPPED).any())


def mean_bias(blocks: list, *, levels: int = BIAS_LEVELS) -> Tuple[Tuple[float, float, float, float], ...]:
    """Rows ``(level, R, G, B)`` at the centres of ``levels`` even bins of [0, 1]: per channel, the
    (flatness, mean, residual) ``blocks`` whose mean lies in a bin give ``-median(residual)`` (module docstring, step
    3), averaged with their mean level; a bin with :data:`BIAS_MIN_BLOCKS` blocks or more is a point of the channel's
    curve, read at the centres linearly between the points and flat beyond them. A channel with fewer than two points
    is 0 (one point says nothing about the other levels); so are all channels without blocks."""
    edges = np.linspace(0, 1, levels + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    table = np.zeros((levels, 3))
    if blocks:
        means = np.array([mean for _, mean, _ in blocks])
        biases = np.array([-np.median(residual.reshape(-1, 3), axis=0) for _, _, residual in blocks])
        for channel in range(3):
            bins = np.clip(np.digitize(means[:, channel], edges) - 1, 0, levels - 1)
            counts = np.bincount(bins, minlength=levels)
            known = counts >= BIAS_MIN_BLOCKS
            if known.sum() >= 2:
                points = np.bincount(bins, weights=means[:, channel], minlength=levels)[known] / counts[known]
                values = np.bincount(bins, weights=biases[:, channel], minlength=levels)[known] / counts[known]
                table[:, channel] = np.interp(centres, points, values)
    return tuple((float(level), *map(float, np.round(row, 6))) for level, row in zip(centres, table))


def holds_noise(residual: np.ndarray) -> bool:
    """Whether every channel of a block's plane-fit ``residual`` spreads by :data:`SATURATED` or more (a channel
    clipped flat holds no noise to take the median of)."""
    return bool(residual.reshape(-1, residual.shape[-1]).std(axis=0).min() >= SATURATED)


def estimate_noise(crops: Iterable[np.ndarray], *, radius: int = RADIUS, block: int = FLAT_BLOCK,
                   fraction: float = FLAT_FRACTION, bias_levels: int = BIAS_LEVELS) -> NoiseModel:
    """The :class:`NoiseModel` of noisy float RGB (H, W, 3) ``crops``: the plane-fit residuals of their flattest
    blocks (:func:`block_residuals`) that are not near black or white, their pooled channel covariance and, after
    :func:`decorrelating_transform`, their pooled per-channel autocorrelation at lags up to ``radius``,
    Bartlett-tapered; and the :func:`mean_bias` (at ``bias_levels`` levels) of the flattest ``fraction`` of all
    blocks that hold noise (:func:`holds_noise`; module docstring, steps 1 and 3)."""
    off_plane = plane_fit_residual_operator(block)
    blocks = sorted((found for crop in crops for found in block_residuals(crop, off_plane)), key=lambda f: f[0])
    unclipped = [found for found in blocks if not near_black_or_white(found[1])]
    if not unclipped:
        raise ValueError(f'estimate_noise needs crops of at least {block} x {block} px that are not black or white')
    residuals = [residual for _, _, residual in unclipped[:max(1, int(len(unclipped) * fraction))]]
    pixels = np.concatenate([residual.reshape(-1, 3) for residual in residuals])
    transform = decorrelating_transform(pixels.T @ pixels / len(pixels))
    sums, counts = 0.0, 0.0
    for residual in residuals:
        crop_sums, crop_counts = autocorrelation(residual @ transform.T, radius=radius)
        sums, counts = sums + crop_sums, counts + crop_counts
    taper = 1 - np.abs(np.arange(-radius, radius + 1)) / (radius + 1)
    noisy = [found for found in blocks if holds_noise(found[2])]
    return NoiseModel(transform, sums / counts * np.outer(taper, taper)[..., None],
                      mean_bias(noisy[:max(1, int(len(noisy) * fraction))], levels=bias_levels))


def bm3d_denoise(noisy: np.ndarray, noise: NoiseModel, *, psd_scale: float) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1] -> the estimate in [0, 1] (float32) of BM3D's hard-thresholding stage for the
    noise ``noise`` with its PSD times ``psd_scale`` (module docstring, step 2)."""
    import bm3d

    from ..basicsr_compat import numpy_trapz_for_bm4d
    numpy_trapz_for_bm4d()
    image = np.asarray(noisy, np.float64) @ noise.transform.T
    profile = bm3d.BM3DProfile()
    # bm4d's default profile adapts its thresholds to local features of the PSD (nf = 32): on 128-px crops of the
    # validation photo with in-camera noise 4.6-6.2 CPU-s per crop, against 0.9 s with nf = 0 (the PSD's global
    # transform-domain variances), which scored 31.27 dB against 31.21 there
    profile.nf = 0
    estimate = bm3d.bm3d(image, noise.psd(*image.shape[:2]) * psd_scale, profile=profile,
                         stage_arg=bm3d.BM3DStages.HARD_THRESHOLDING)
    return np.clip(estimate @ np.linalg.inv(noise.transform).T, 0, 1).astype(np.float32)


def check_section(section: Any) -> Dict[str, Any]:
    """``classical_teacher`` with its defaults filled in; :class:`OptionError` naming the key otherwise."""
    if not isinstance(section, Mapping):
        raise OptionError(f'{SECTION}: expected a mapping ({", ".join(DEFAULTS)}), got {section!r}')
    unknown = sorted(set(section) - set(DEFAULTS))
    if unknown:
        raise OptionError(f'{SECTION}.{unknown[0]}: unknown option; allowed: {", ".join(DEFAULTS)}')
    checked = {**DEFAULTS, **section}
    for key, (valid, expected) in VALID.items():
        value = checked[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not valid(value):
            raise OptionError(f'{SECTION}.{key}: {expected}, got {value!r}')
    return checked
