#!/usr/bin/env python
"""How well the clean-free ``masked_holdout`` validation metric ranks checkpoints, measured on the demo data.

``python benchmarks/checkpoint_ranking.py --iters 1200 --every 100`` (measured: ``results/checkpoint_ranking.md``)

A user training AMSNet on their own noisy photos has no clean image to compute a validation PSNR, so they cannot
pick a checkpoint the way the authors do (SIDD validation PSNR). The masked hold-out loss needs none: L_m (Eq. 4)
of the single-mask training forward (Eq. 2-3, PD at ``amsnet.train_stride``) on a noisy validation image that is
never trained on, with a fixed mask seeded by ``amsnet.seed`` (``AMSNetModel.masked_holdout_loss``, the metric
``masked_holdout`` of :mod:`amsnet_basicsr.metrics`). This module trains the demo's model
(:func:`amsnet_basicsr.recipes.mask_stage_options`: variant B-E, MaskAwareDnCNN, noisy LMDB of the training photos)
in this process, keeps the weights every ``--every`` iterations, and scores every kept state on the demo's validation
block (:mod:`amsnet_basicsr.demo_data`) with

* the masked hold-out loss of its NOISY half (what a user without clean images can compute), and
* the PSNR of the product's inference (``AMSNetDenoiser``: MMDB at the test stride, Eq. 6-8, then R3) to its
  CLEAN half (the truth the hold-out loss stands in for),

then reports the Spearman rank correlation between -masked_holdout and PSNR over the checkpoints (1: the hold-out
loss orders the checkpoints exactly as PSNR does), and the same for the training loss L_m averaged over the
``--every`` steps before each checkpoint (the other clean-free signal a user has, but measured on training crops).
"""
import argparse
import copy
import itertools
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
from common import denoiser_from_state, score_blocks, train_in_process
from torch.utils.data import DataLoader

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR; must precede the basicsr imports)
from amsnet_basicsr import demo_data, recipes
from amsnet_basicsr.errors import AMSNetError, report

from basicsr.data import build_dataset
from basicsr.utils import set_random_seed


def build_data(out, config, seed, log=print):
    """The demo data under ``out``: the noisy training photos cut into tiles in a BasicSR LMDB, and the validation
    block as a noisy/clean PNG pair (BasicSR's validation during training) and in memory (``val``)."""
    photos = demo_data.training_images(seed=seed, max_side=config['max_train_side'], names=config['train_images'])
    lmdb_path = os.path.join(out, 'train_noisy.lmdb')
    keys = recipes.pack_noisy_tiles(photos, os.path.join(out, 'train_noisy_tiles'), lmdb_path, config['train_tile'])
    log(f'training set: {len(keys)} noisy tiles of {", ".join(config["train_images"])} -> {lmdb_path}')
    val = demo_data.validation_blocks(seed=seed, max_side=config['max_eval_side'], block=config['val_block'])
    val_folders = {kind: os.path.join(out, 'val', kind) for kind in ('noisy', 'clean')}
    for key, noisy, clean in val:
        for kind, image in (('noisy', noisy), ('clean', clean)):
            recipes.write_png(os.path.join(val_folders[kind], key + '.png'), image)
    return dict(lmdb=lmdb_path, val_folders=val_folders, val=val)


def train_checkpoints(options, iters, every, seed, log=print):
    """Train ``options`` (a ``train.py`` options dict) in this process as BasicSR's training loop does (learning
    rate update, ``feed_data``, ``optimize_parameters``); returns ``[(iteration, state_dict, mean training loss of
    the last `every` steps)]`` every ``every`` iterations."""
    set_random_seed(seed)
    model = recipes.in_process_model(options, is_train=True)
    dataset = build_dataset({**options['datasets']['train'], 'phase': 'train', 'scale': 1})
    loader = DataLoader(dataset, batch_size=options['datasets']['train']['batch_size_per_gpu'], shuffle=True,
                        num_workers=0, drop_last=True, generator=torch.Generator().manual_seed(seed))
    checkpoints, losses, start = [], [], time.time()

    def after_step(iteration):
        losses.append(float(next(iter(model.log_dict.values()))))
        if iteration % every == 0:
            state = copy.deepcopy(model.get_bare_model(model.net_g).state_dict())
            checkpoints.append((iteration, state, float(np.mean(losses[-every:]))))
            log(f'iteration {iteration}: training L_m {checkpoints[-1][2]:.4f} ({time.time() - start:.0f} s)')

    def epochs():
        while True:
            yield from loader

    train_in_process(model, itertools.islice(epochs(), iters), warmup_iter=options['train'].get('warmup_iter', -1),
                     after_step=after_step)
    return checkpoints


def score_checkpoint(options, state_dict, blocks):
    """(masked hold-out loss of the noisy blocks, PSNR of the inference to the clean blocks), each the mean over
    ``blocks`` ([(key, noisy, clean)] of :mod:`amsnet_basicsr.demo_data`). The hold-out loss is the model's
    (``AMSNetModel.masked_holdout_loss``, as validation computes it) and reads only the noisy block; the inference is
    the product's ``AMSNetDenoiser`` with the same options and weights (what ``amsnet-denoise`` runs)."""
    model = recipes.in_process_model(options, is_train=False, state_dict=state_dict)
    holdout = float(np.mean([model.masked_holdout_loss(recipes.to_tensor(noisy)) for _, noisy, _ in blocks]))
    psnr = float(np.mean([result['psnr'] for result in score_blocks(denoiser_from_state(options, state_dict),
                                                                      blocks)]))
    return holdout, psnr


def rank_correlations(rows):
    """Spearman rank correlations over the checkpoints: -masked_holdout vs PSNR and -training loss vs PSNR."""
    from scipy.stats import spearmanr
    psnr = [row['psnr'] for row in rows]
    holdout = spearmanr([-row['masked_holdout'] for row in rows], psnr)
    train = spearmanr([-row['train_loss'] for row in rows], psnr)
    return {'holdout_vs_psnr': float(holdout.statistic), 'holdout_vs_psnr_p': float(holdout.pvalue),
            'train_loss_vs_psnr': float(train.statistic), 'train_loss_vs_psnr_p': float(train.pvalue)}


def markdown(result):
    """The result as a Markdown table plus the correlations."""
    best_psnr = max(result['rows'], key=lambda row: row['psnr'])
    best_holdout = min(result['rows'], key=lambda row: row['masked_holdout'])
    lines = ['| iteration | masked_holdout (lower is better) | val PSNR (dB) | training L_m (last steps) |',
             '| --- | --- | --- | --- |']
    lines += [f"| {row['iteration']} | {row['masked_holdout']:.5f} | {row['psnr']:.2f} | {row['train_loss']:.5f} |"
              for row in result['rows']]
    corr = result['correlations']
    lines += ['', f"Spearman rank correlation over {len(result['rows'])} checkpoints: "
              f"-masked_holdout vs PSNR {corr['holdout_vs_psnr']:.3f} (p = {corr['holdout_vs_psnr_p']:.3g}); "
              f"-training L_m vs PSNR {corr['train_loss_vs_psnr']:.3f} (p = {corr['train_loss_vs_psnr_p']:.3g}).",
              f"Checkpoint chosen by masked_holdout: iteration {best_holdout['iteration']} "
              f"({best_holdout['psnr']:.2f} dB); by PSNR: iteration {best_psnr['iteration']} "
              f"({best_psnr['psnr']:.2f} dB)."]
    return '\n'.join(lines)


def run(iters, every, seed=0, out=None, log=print):
    """Build the demo data under ``out`` (a temporary folder when None), train, score every checkpoint; returns
    ``{'rows': [...], 'correlations': {...}, ...}``."""
    with tempfile.TemporaryDirectory(prefix='amsnet_ranking_') as temp:
        out = out or temp
        config = dict(recipes.RECIPES['full'])
        data = build_data(out, config, seed, log)
        options = recipes.mask_stage_options(config, data, seed=seed, iters=iters)
        start = time.time()
        checkpoints = train_checkpoints(options, iters, every, seed, log)
        train_seconds = time.time() - start
        rows = []
        for iteration, state, train_loss in checkpoints:
            holdout, psnr = score_checkpoint(options, state, data['val'])
            rows.append(dict(iteration=iteration, masked_holdout=holdout, psnr=psnr, train_loss=train_loss))
            log(f'iteration {iteration}: masked_holdout {holdout:.5f}, PSNR {psnr:.2f} dB')
    return dict(iters=iters, every=every, seed=seed, train_seconds=train_seconds, rows=rows,
                correlations=rank_correlations(rows))


def main(argv=None):
    parser = argparse.ArgumentParser(prog='checkpoint_ranking.py', description=__doc__.split(
        '\n\n')[0])
    parser.add_argument('--iters', type=int, default=1200, help='training iterations (default 1200)')
    parser.add_argument('--every', type=int, default=100, help='keep the weights every this many iterations')
    parser.add_argument('--seed', type=int, default=0, help='demo data, initialisation, crops and masks seed')
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads (default 1)')
    parser.add_argument('--out', default=None, help='folder for the demo data (default: a temporary folder)')
    parser.add_argument('--json', default=None, help='also write the result as JSON to this file')
    args = parser.parse_args(argv)
    if args.iters < 1 or not 1 <= args.every <= args.iters or args.iters // args.every < 3:
        parser.error('need --iters >= 1 and at least 3 checkpoints (--every <= --iters / 3)')
    torch.set_num_threads(args.threads)
    start = time.time()

    def log(message):
        print(f'[ranking {time.time() - start:6.1f}s] {message}', flush=True)
    try:
        result = run(args.iters, args.every, args.seed, args.out, log)
    except AMSNetError as error:
        return report('checkpoint_ranking.py', error)
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(result, handle, indent=2)
    print(markdown(result), flush=True)
    log(f'training {result["train_seconds"]:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
