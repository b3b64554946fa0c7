#!/usr/bin/env python
"""Where the anchored student's colour cast comes from: the noise's mean by level, measured and true.

    python benchmarks/noise_mean.py --out results/noise_mean                         # the validation photo, ~1 min
    python benchmarks/noise_mean.py --photos astronaut chelsea --out results/noise_mean_test

``amsnet-train-folder``'s student keeps the noisy input's 32-px block means less the noise's mean at their level
(``amsnet.low_frequency_anchor``, ``amsnet.anchor_bias``; :func:`amsnet_basicsr.inference.anchor_low_frequencies`),
the mean measured without a clean image as the mean minus the median of flat blocks
(:func:`amsnet_basicsr.distill.classical.mean_bias`). So its photo-wide colour cast is set by the anchor, not by the
network: this bench scores a perfect denoiser, the clean photo given the noisy photo's anchored means, for each photo
through each camera pipeline of ``data_shift.VARIANTS`` (noise seed 0), with the noise's mean

- left out (``0``);
- **measured** as ``amsnet-train-folder`` measures it (:func:`classical.estimate_noise` on the photo's 128-px
  tiles), looked up at each block's noisy mean (the product), at each number of levels of ``--bias-levels``;
- **true** (:func:`true_curve`: the mean of noisy - clean at each clean level, from the photo itself), looked up the
  same way at the block means;
- true, looked up **per pixel** at the clean level (the bias of a textured block is the mean of its pixels' biases,
  not the bias at its mean level).

It prints the cast (largest absolute per-channel mean error, grey levels, as ``data_shift.errors``) and the
low-frequency error of each, and the true and measured curves at :data:`LEVELS`. The measured table is in
``benchmarks/results/noise_mean.md``. Reads clean images: a diagnostic, it tunes nothing.
"""
import argparse
import os.path as osp
import sys

import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import data_shift  # noqa: E402  (the bench's camera pipelines)

from amsnet_basicsr.distill import classical  # noqa: E402
from amsnet_basicsr.inference import anchor_low_frequencies, piecewise_linear  # noqa: E402
from amsnet_basicsr.recipes import to_tensor, to_uint8  # noqa: E402

ANCHOR_BLOCK = 32  # the recipe's amsnet.low_frequency_anchor
TRUE_BINS = 64  # clean levels of the true curve: 4 grey levels each, finer than the shadows' bend
MIN_PIXELS = 200  # a bin with fewer pixels takes its value from its neighbours (its mean's error < 0.1 grey level)
LEVELS = (0.0625, 0.1875, 0.3125, 0.5, 0.8125)  # where the curves are printed: shadows to highlights


def true_curve(noisy, clean, *, bins=TRUE_BINS):
    """Rows ``(level, R, G, B)`` (``amsnet.anchor_bias``'s form) at the centres of ``bins`` even bins of [0, 1]: per
    channel, the mean of ``noisy - clean`` over the pixels whose clean level lies in the bin; a bin with fewer than
    :data:`MIN_PIXELS` takes the linear interpolation of its neighbours (flat beyond)."""
    edges = np.linspace(0, 1, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    noise = np.asarray(noisy, np.float64) - clean
    table = np.zeros((bins, 3))
    for channel in range(3):
        index = np.clip(np.digitize(clean[..., channel], edges) - 1, 0, bins - 1).ravel()
        counts = np.bincount(index, minlength=bins)
        sums = np.bincount(index, weights=noise[..., channel].ravel(), minlength=bins)
        known = counts >= MIN_PIXELS
        table[:, channel] = np.interp(centres, centres[known], sums[known] / counts[known])
    return tuple((float(level), *map(float, row)) for level, row in zip(centres, table))


def perfect_anchored(noisy, clean, bias, *, per_pixel):
    """The clean photo given the noisy photo's anchored block means, float (H, W, 3): ``bias`` rows (None: no mean)
    looked up at the block means (``anchor_low_frequencies``) or, ``per_pixel``, at each clean pixel's level
    (subtracted from the noisy photo, then anchored without a bias)."""
    noisy_t, clean_t = to_tensor(noisy), to_tensor(clean)
    if per_pixel:
        noisy_t, bias = noisy_t - piecewise_linear(clean_t, bias), None
    output = anchor_low_frequencies(noisy_t, clean_t, block=ANCHOR_BLOCK, bias=bias)
    return output[0].permute(1, 2, 0).numpy()


def labels(bias_levels):
    """The columns: the noisy input, then the perfect denoiser anchored with each noise mean (module docstring)."""
    return ['noisy input', 'no mean', *(f'measured ({levels} levels), block means' for levels in bias_levels),
            'true, block means', 'true, per pixel']


def measure(noisy, clean, *, tile, bias_levels):
    """{label of :func:`labels`: (cast, low-frequency error)}, and the 'true' curve and the 'measured' one at the first
    of ``bias_levels``."""
    crops = data_shift.tiles_of(noisy, tile=tile)
    measured = [classical.estimate_noise(crops, bias_levels=levels).mean_bias for levels in bias_levels]
    true = true_curve(noisy, clean)
    outputs = [noisy, *(perfect_anchored(noisy, clean, curve, per_pixel=False) for curve in (None, *measured, true)),
               perfect_anchored(noisy, clean, true, per_pixel=True)]
    reference = to_uint8(clean)
    found = {label: data_shift.errors(to_uint8(output), reference)[:2]
             for label, output in zip(labels(bias_levels), outputs)}
    return found, dict(true=true, measured=measured[0])


def at_levels(rows):
    """(len(LEVELS), 3) grey levels: ``rows`` read at :data:`LEVELS` as the anchor reads them."""
    level = torch.tensor(LEVELS, dtype=torch.float64).view(1, 1, -1, 1).expand(1, 3, -1, 1)
    return piecewise_linear(level, rows)[0, :, :, 0].T.numpy() * 255


def markdown(results, *, bias_levels, command):
    """The casts table (and the mean cast of each column) and the curves table."""
    columns = labels(bias_levels)
    lines = [f'`{command}`', '', 'A perfect denoiser given the noisy photo\'s anchored 32-px block means: colour cast '
             '/ low-frequency error, grey levels.', '',
             '| pipeline | photo | ' + ' | '.join(columns) + ' |', '| --- ' * (2 + len(columns)) + '|']
    for result in results:
        lines.append(f'| {result["variant"]} | {result["photo"]} | ' + ' | '.join(
            '{:.2f} / {:.2f}'.format(*result['scores'][label]) for label in columns) + ' |')
    lines.append('| mean | | ' + ' | '.join('{:.2f} / {:.2f}'.format(*np.mean(
        [result['scores'][label] for result in results], axis=0)) for label in columns) + ' |')
    lines += ['', f'The noise\'s mean, true / measured ({bias_levels[0]} levels), grey levels, R, G, B at each level:',
              '',
              '| pipeline | photo | ' + ' | '.join(f'level {level:g}' for level in LEVELS) + ' |',
              '| --- ' * (2 + len(LEVELS)) + '|']
    for result in results:
        true, measured = at_levels(result['curves']['true']), at_levels(result['curves']['measured'])
        lines.append(f'| {result["variant"]} | {result["photo"]} | ' + ' | '.join(
            ', '.join(f'{t:+.1f}/{m:+.1f}' for t, m in zip(true[i], measured[i])) for i in range(len(LEVELS))) + ' |')
    return '\n'.join(lines) + '\n'


def run(argv=None):
    parser = argparse.ArgumentParser(prog='noise_mean.py', description=__doc__.split('\n\n')[0])
    data_shift.sample_arguments(parser, 'noise_mean.md')
    parser.add_argument('--bias-levels', nargs='+', type=int, default=[classical.BIAS_LEVELS],
                        help='levels of the measured curve, one column each (default: the product\'s %(default)s)')
    args = parser.parse_args(argv)
    args.bias_levels = list(dict.fromkeys(args.bias_levels))  # one column each
    results = []
    for variant, photo, noisy, clean in data_shift.pipeline_photos(args.variants, names=args.photos):
        scores, curves = measure(noisy, clean, tile=args.tile, bias_levels=args.bias_levels)
        results.append(dict(variant=variant, photo=photo, scores=scores, curves=curves))
        print(f'{variant[:44]:44s} {photo:12s} cast ' + ' '.join(f'{cast:.2f}' for cast, _ in scores.values()),
              flush=True)
    data_shift.write_page(out=args.out, filename='noise_mean.md', text=markdown(
        results, bias_levels=args.bias_levels, command=data_shift.command_line('noise_mean.py', argv)))
    return results


if __name__ == '__main__':
    run()
