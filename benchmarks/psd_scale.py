#!/usr/bin/env python
"""Can ``classical_teacher.psd_scale`` be chosen per folder without a clean image? Three criteria against the truth.

    python benchmarks/psd_scale.py --out results/psd_scale                            # the validation photo, ~13 min
    python benchmarks/psd_scale.py --photos rocket retina --variants 0 1 --out results/psd_scale_train

``amsnet-train-folder``'s teacher is BM3D given the noise's PSD measured on the flat blocks of the noisy tiles, times
a fixed ``psd_scale`` (:mod:`amsnet_basicsr.distill.classical`). The best factor differs by photo and camera pipeline
(by up to 0.7 dB between 1.0 and 1.5 on one photo), so a per-folder choice could pay, if some statistic of the noisy
tiles found it. For each photo through each pipeline of ``data_shift.VARIANTS`` (:func:`data_shift.variant_photos`,
noise seed 0), this measures on ``--tiles`` evenly spaced ``--tile``-px tiles (the noise measured on all of them, as
``amsnet-distill-prepare`` does), for every factor of ``--scales``:

- the PSNR of BM3D's output against the clean tiles (the truth, unknown to a user);
- **SURE** (Stein's unbiased risk estimate; Monte-Carlo divergence, Ramani, Blu and Unser, IEEE TIP 2008, with the
  perturbation drawn from the measured correlated noise, :func:`gaussian_noise`): ``|y - f(y)|^2 + 2 b.(f(y + eps b)
  - f(y)) / eps`` per pixel, up to a constant;
- **R2R** (recorrupted-to-recorrupted, Pang et al., CVPR 2021): ``|f_s(1+a^2)(y + a b) - (y - b / a)|^2`` per pixel,
  up to a constant, the pair being uncorrelated when ``b`` has the noise's covariance; ``b`` either Gaussian with the
  measured PSD or a mosaic of the flat blocks' own residuals (:func:`flat_block_noise`, which keeps what the
  stationary model misses: the Bayer pattern's period, the level-dependent variance);
- the **high-frequency ratio** (:func:`high_frequency_ratio`): a sharp photo's tiles hold power above a quarter of
  the sampling rate, a soft photo's little but noise.

The measured table is in ``benchmarks/results/psd_scale.md``. Torch-free: numpy, OpenCV and ``bm3d``.
"""
import argparse
import os.path as osp
import sys
import time
from functools import partial

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import data_shift  # noqa: E402  (the bench's camera pipelines)

from amsnet_basicsr.distill import classical  # noqa: E402

SCALES = (1.0, 1.5, 2.0, 2.5)
SURE_EPSILON = 0.1  # the perturbation, in units of the noise (finite differences of a non-smooth BM3D need some)
R2R_ALPHA = 0.5
HIGH_FREQUENCY = 0.25  # cycles per px
CRITERIA = ('sure', 'r2r_gaussian', 'r2r_flat')  # estimated risks, lowest picks


def gaussian_noise(model, height, width, rng):
    """A (height, width, 3) RGB draw of Gaussian noise with ``model``'s PSD (per channel of its colour space)."""
    white = rng.standard_normal((height, width, 3))
    spectrum = np.fft.fft2(white, axes=(0, 1)) * np.sqrt(model.psd(height, width) / (height * width))
    return np.real(np.fft.ifft2(spectrum, axes=(0, 1))) @ np.linalg.inv(model.transform).T


def flat_residuals(crops, *, block=classical.FLAT_BLOCK, fraction=classical.FLAT_FRACTION):
    """The plane-fit residuals of the flattest ``fraction`` of the crops' unclipped blocks (the noise that
    :func:`classical.estimate_noise` measures), and those of all unclipped blocks."""
    off_plane = classical.plane_fit_residual_operator(block)
    found = sorted((f for crop in crops for f in classical.block_residuals(crop, off_plane)), key=lambda f: f[0])
    unclipped = [residual for _, mean, residual in found if not classical.near_black_or_white(mean)]
    return unclipped[:max(1, int(len(unclipped) * fraction))], unclipped


def flat_block_noise(flat, height, width, rng):
    """A (height, width, 3) mosaic of randomly drawn ``flat`` residual blocks, each at a block-aligned position (so a
    period of the Bayer pattern stays in phase)."""
    block = flat[0].shape[0]
    noise = np.zeros((height, width, 3))
    for top in range(0, height, block):
        for left in range(0, width, block):
            piece = flat[rng.integers(len(flat))]
            noise[top:top + block, left:left + block] = piece[:height - top, :width - left]
    return noise


def sure(denoise, noisy, perturbation, *, epsilon=SURE_EPSILON):
    """Monte-Carlo SURE of ``denoise`` at ``noisy`` per pixel, plus the noise variance (a constant)."""
    output = denoise(noisy)
    divergence = (perturbation * (denoise(noisy + epsilon * perturbation) - output)).mean() / epsilon
    return float(((noisy - output) ** 2).mean() + 2 * divergence)


def r2r(denoise, noisy, perturbation, *, alpha=R2R_ALPHA):
    """The recorrupted-to-recorrupted loss of ``denoise`` (given the noisier input) per pixel."""
    return float(((denoise(noisy + alpha * perturbation) - (noisy - perturbation / alpha)) ** 2).mean())


def high_frequency_ratio(residuals, flat, luma):
    """The power of the blocks' plane-fit ``residuals`` above :data:`HIGH_FREQUENCY` cycles per px over that of the
    ``flat`` blocks' (the noise alone), in the ``luma`` projection of RGB, both Hann-windowed."""
    block = residuals[0].shape[0]
    window = np.outer(np.hanning(block), np.hanning(block))
    frequency = np.fft.fftfreq(block)
    high = np.hypot(*np.meshgrid(frequency, frequency, indexing='ij')) > HIGH_FREQUENCY

    def power(found):
        spectra = np.fft.fft2(np.stack([residual @ luma for residual in found]) * window, axes=(1, 2))
        return float((np.abs(spectra) ** 2)[:, high].mean())
    return power(residuals) / power(flat)


def bm3d_at(model, scale, image):
    """BM3D's float64 estimate of ``image`` given ``model``'s PSD times ``scale``."""
    return classical.bm3d_denoise(image, model, psd_scale=scale).astype(np.float64)


def measure(noisy, clean, *, tile, tiles, scales, seed=0):
    """{'ratio', 'psnr', 'sure', 'r2r_gaussian', 'r2r_flat'} (the last four lists over ``scales``) of one photo."""
    noisy_tiles, clean_tiles = data_shift.tiles_of(noisy, tile=tile), data_shift.tiles_of(clean, tile=tile)
    model = classical.estimate_noise(noisy_tiles)
    flat, unclipped = flat_residuals(noisy_tiles)
    picked = np.linspace(0, len(noisy_tiles) - 1, min(tiles, len(noisy_tiles))).astype(int)
    found = dict(ratio=high_frequency_ratio(unclipped, flat, model.transform[0]), psnr=[], sure=[], r2r_gaussian=[],
                 r2r_flat=[])
    scored = []  # (noisy, clean, Gaussian draw, flat-block draw) per picked tile: the same draws for every scale
    for index in picked:
        y, x = (np.asarray(image[index], np.float64) for image in (noisy_tiles, clean_tiles))
        rng = np.random.default_rng([seed, int(index)])
        scored.append((y, x, gaussian_noise(model, *y.shape[:2], rng), flat_block_noise(flat, *y.shape[:2], rng)))
    for scale in scales:
        bm3d, noisier = (partial(bm3d_at, model, factor) for factor in (scale, scale * (1 + R2R_ALPHA ** 2)))
        mse, *criteria = np.mean([[((bm3d(y) - x) ** 2).mean(), sure(bm3d, y, gaussian), r2r(noisier, y, gaussian),
                                   r2r(noisier, y, flat_noise)] for y, x, gaussian, flat_noise in scored], axis=0)
        found['psnr'].append(float(-10 * np.log10(mse)))
        for key, value in zip(CRITERIA, criteria):
            found[key].append(float(value))
    return found


def markdown(rows, *, scales, command):
    """The result table: per photo and pipeline, the PSNR at each factor, and the factor each criterion picks."""
    lines = [f'`{command}`', '', '| pipeline | photo | high-frequency ratio | ' + ' | '.join(
        f'PSNR x {scale:g}' for scale in scales) + ' | best | SURE picks | R2R (Gaussian) picks | R2R (flat blocks) '
        'picks |', '| --- ' * (7 + len(scales)) + '|']
    for row in rows:
        picks = [scales[int(np.argmax(row['psnr']))]] + [scales[int(np.argmin(row[key]))] for key in CRITERIA]
        lines.append(f'| {row["variant"]} | {row["photo"]} | {row["ratio"]:.3f} | ' + ' | '.join(
            f'{value:.2f}' for value in row['psnr']) + ' | ' + ' | '.join(f'{pick:g}' for pick in picks) + ' |')
    return '\n'.join(lines) + '\n'


def run(argv=None):
    parser = argparse.ArgumentParser(prog='psd_scale.py', description=__doc__.split('\n\n')[0])
    data_shift.sample_arguments(parser, 'psd_scale.md')
    parser.add_argument('--scales', nargs='+', type=float, default=list(SCALES))
    parser.add_argument('--tiles', type=int, default=8, help='tiles scored per photo (default: %(default)s)')
    args = parser.parse_args(argv)
    rows = []
    for variant, photo, noisy, clean in data_shift.pipeline_photos(args.variants, names=args.photos):
        start = time.perf_counter()
        rows.append(dict(variant=variant, photo=photo, **measure(noisy, clean, tile=args.tile, tiles=args.tiles,
                                                                 scales=args.scales)))
        print(f'{variant[:44]:44s} {photo:16s} ratio {rows[-1]["ratio"]:.3f} PSNR ' + ' '.join(
            f'{value:.2f}' for value in rows[-1]['psnr']) + f' ({time.perf_counter() - start:.0f} s)', flush=True)
    data_shift.write_page(out=args.out, filename='psd_scale.md', text=markdown(
        rows, scales=args.scales, command=data_shift.command_line('psd_scale.py', argv)))
    return rows


if __name__ == '__main__':
    run()
