#!/usr/bin/env python
"""Score the students of earlier data-shift runs with the current ``amsnet.anchor_bias``.

    python benchmarks/rescore_students.py <bench --out folder>... [--json scores.json]

``amsnet.anchor_bias`` (the noise's mean by level, :func:`amsnet_basicsr.distill.classical.mean_bias`) takes no part
in training: ``amsnet-train-folder`` measures it on the packed noisy tiles with the noise PSD and writes it into
``denoise.yml``. For every ``train_folder`` under the given ``benchmarks/data_shift.py --out`` folders (one per
seed, variant and training set), this script measures it on that run's packed tiles with the current code, and
scores the run's student without and with it on the bench's blocks of that seed and variant (``--block``,
``--limit``: the bench's defaults): PSNR, SSIM, cast and low-frequency error as the bench reports them. A student
without ``low_frequency_anchor`` (the quick recipe's) is skipped.
"""
import argparse
import glob
import json
import os.path as osp

import data_shift
import numpy as np
import yaml

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.distill import classical, targets
from amsnet_basicsr.inference import AMSNetDenoiser
from amsnet_basicsr.recipes import scores, to_uint8


def rescore(folder, *, variant, seed, block, limit):
    """{'no bias': [PSNR, SSIM, cast, LF], 'bias': [...], 'anchor_bias': rows} of the run in ``folder``."""
    lmdb = osp.join(folder, 'data', 'train_noisy.lmdb')
    bias = targets.measured_noise(lmdb, crops=classical.DEFAULTS['noise_crops']).mean_bias
    with open(osp.join(folder, 'denoise.yml'), encoding='utf-8') as handle:
        options = yaml.safe_load(handle)
    options['path']['pretrain_network_g'] = osp.join(folder, options['path']['pretrain_network_g'])
    result = {'anchor_bias': [list(row) for row in bias]}
    blocks = data_shift.variant_blocks(variant, seed=seed, block=block, limit=limit)
    for label, section in (('no bias', {'anchor_bias': None}), ('bias', {'anchor_bias': result['anchor_bias']})):
        denoiser = AMSNetDenoiser.from_options({**options, 'amsnet': {**options['amsnet'], **section}})
        rows = []
        for _, noisy, clean in blocks:
            output, reference = to_uint8(denoiser(noisy)), to_uint8(clean)
            cast, low_frequency = data_shift.errors(output[..., ::-1], reference[..., ::-1])[:2]
            rows.append([*scores(output, reference), cast, low_frequency])
        result[label] = np.mean(rows, axis=0).round(4).tolist()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('folders', nargs='+', help='benchmarks/data_shift.py --out folders')
    parser.add_argument('--block', type=int, default=256)
    parser.add_argument('--limit', type=int, default=3)
    parser.add_argument('--json', help='also write the scores to this JSON file')
    args = parser.parse_args(argv)
    slugs = {data_shift.slug(variant): variant for variant in data_shift.VARIANTS}
    report = {}
    for out in args.folders:
        for folder in sorted(glob.glob(osp.join(out, 'train_folder_runs', 'seed_*', '*', '*', 'train_folder'))):
            seed_part, slug, trained_on = folder.split(osp.sep)[-4:-1]
            seed = int(seed_part[len('seed_'):])
            with open(osp.join(folder, 'denoise.yml'), encoding='utf-8') as handle:
                if not yaml.safe_load(handle)['amsnet'].get('low_frequency_anchor'):
                    print(f'{folder}: its student keeps no block means (low_frequency_anchor): skipped')
                    continue
            result = rescore(folder, variant=slugs[slug], seed=seed, block=args.block, limit=args.limit)
            report[folder] = dict(variant=slugs[slug], seed=seed, trained_on=trained_on, **result)
            print(f'{slugs[slug]}, seed {seed}, trained on {trained_on}: PSNR / SSIM / cast / LF without the bias '
                  f'{result["no bias"]}, with it {result["bias"]}', flush=True)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as handle:
            json.dump(report, handle, indent=1)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
