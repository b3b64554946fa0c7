"""The embedded demo: self-supervised AMSNet training and testing on a CPU in a few minutes, no download.

``python -m amsnet_basicsr.demo`` (console script ``amsnet-demo``):

1. Takes the embedded demo data (:mod:`amsnet_basicsr.demo_data`: scikit-image's bundled photos with realistic,
   signal-dependent and spatially correlated sRGB camera noise, split by photo into training, validation and
   held-apart test). Only the NOISY training photos are cut into tiles and packed into a BasicSR LMDB
   (``basicsr.utils.lmdb_util.make_lmdb_from_imgs``); no clean pixel is ever written to the training set. The
   validation block (the only image used to choose the demo's settings: architecture, strides, learning rate,
   schedule, R3) is written as a noisy/clean PNG pair for BasicSR's validation during training; the test blocks stay
   in memory and are looked at once, after training.

2. Writes a BasicSR options file (``RECIPES['full']`` through :func:`~amsnet_basicsr.recipes.mask_stage_options`:
   ``model_type: AMSNetModel``, ``NoisyImageDataset`` on the LMDB, a small denoiser) into the output folder and
   trains by running ``python -m amsnet_basicsr.train -opt <yml>`` (:func:`~amsnet_basicsr.recipes.train`) in a
   subprocess, with the output folder as the working directory (``experiments/`` and ``tb_logger/`` land there).
   The training curve (L_m and validation PSNR) is read from the run's TensorBoard event file.

3. Loads the trained ``net_g`` into ``AMSNetModel`` (BasicSR's ``build_model``) and denoises the held-apart blocks
   with the model's own inference (``model.test()``: MMDB at the test stride, Eq. 6-8, then R3), quantises with
   ``basicsr.utils.tensor2img`` and prints PSNR/SSIM (``basicsr.metrics``, crop_border 0: the paper's convention)
   of the noisy input, of the untrained network and of the trained one, beside OpenCV NLM and BM3D tuned on the
   validation block; writes side-by-side PNGs (noisy | NLM | BM3D | AMSNet-B-E | AMSNet-D | clean), ``results.md``,
   ``results.json`` and the training curve (L_m and validation PSNR vs iteration) as ``curve.csv`` and ``curve.png``.

4. Distils the trained B-E model into a single-pass student (stage ``distill``, AMSNet-D,
   :func:`~amsnet_basicsr.recipes.distill_stage_options`): the teacher's outputs on the noisy training tiles are
   precomputed into an LMDB, a 1.1 M-parameter NAFNet learns noisy -> teacher output with ``train.py``, and the
   student is scored on the same held-apart blocks beside the teacher, with seconds per block (one pass instead of
   18).

Why the settings differ from the paper's: the authors' Restormer/DnCNN, 160-px crops and PD stride 5
end below their noisy input after a CPU's few minutes (and so did plain DnCNN / U-Net variants tried here). The
demo buys iterations and helps the denoiser: a small :class:`~amsnet_basicsr.archs.mask_aware_arch.MaskAwareDnCNN`
(it starts as the mean of the unmasked neighbours and learns a correction), 60-px crops, Adam with cosine decay,
photos enlarged 2x (``demo_data.ENLARGE``) like full-resolution captures, and PD stride 2 in training, which the
demo noise allows: its correlation (bilinear demosaic) is ~0.6 at distance 1, ~0.15 at 2 and ~0 from 3 on, while
SIDD's longer-range correlation needs stride 5. The table also reports the untrained network (the plain
neighbour mean) so that the part of the gain that training brings is visible.

Its settings and options builders live in :mod:`amsnet_basicsr.recipes`. The helpers :func:`train_in_process`,
:func:`steps_per_second`, :func:`scores` and :func:`evaluate` are shared with the research scripts in
``benchmarks/`` (``ablation.py``, ``checkpoint_ranking.py``, ``data_shift.py``).
"""
import argparse
import copy
import json
import math
import os
import os.path as osp
import sys
import time

import numpy as np
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR; must precede the basicsr imports)
from amsnet_basicsr import baselines, demo_data, output_folder
from amsnet_basicsr.errors import run_command
from amsnet_basicsr.recipes import (MASK_EXPERIMENT, RECIPES, STUDENT_EXPERIMENT, distill_stage_options,
                                    in_process_model, mask_stage_options, pack_noisy_tiles, to_tensor, to_uint8,
                                    train, write_options, write_png)
from basicsr.archs import build_network
from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils import imwrite, tensor2img

# ----------------------------------------------------------------------------------------------- shared helpers
def steps_per_second(model, batch, *, steps=12, warmup=2, clock=time.perf_counter):
    """Training speed of ``model`` on ``batch``: the median time of its own ``optimize_parameters`` (the steps
    after ``warmup``), measured with ``clock``. The model is trained by these steps: use a throwaway one."""
    model.feed_data({'lq': batch})
    timings = []
    for step in range(1, steps + 1):
        start = clock()
        model.optimize_parameters(step)
        if step > warmup:
            timings.append(clock() - start)
    return 1.0 / float(np.median(timings))


def train_in_process(model, batches, *, warmup_iter=-1, after_step=None):
    """The body of BasicSR's training loop on an iterable of ``feed_data`` dicts: the learning-rate update, then the
    model's own ``optimize_parameters``; ``after_step(iteration)`` is called after each step."""
    for iteration, batch in enumerate(batches, start=1):
        model.update_learning_rate(iteration, warmup_iter=warmup_iter)
        model.feed_data(batch)
        model.optimize_parameters(iteration)
        if after_step is not None:
            after_step(iteration)


def scores(image, reference):
    """(PSNR, SSIM) of uint8 images with BasicSR's metrics, crop_border 0 (the paper's convention)."""
    return calculate_psnr(image, reference, crop_border=0), calculate_ssim(image, reference, crop_border=0)


def evaluate(model, blocks):
    """Denoise every (key, noisy, clean) block with the model's own inference (``model.test()``); returns, per
    block, the uint8 BGR images (``basicsr.utils.tensor2img``) and the PSNR/SSIM of the output to the clean block."""
    results = []
    for key, noisy, clean in blocks:
        model.feed_data({'lq': to_tensor(noisy)})
        model.test()
        denoised, clean8 = tensor2img(model.output), to_uint8(clean)
        psnr, ssim = scores(denoised, clean8)
        results.append(dict(key=key, noisy=to_uint8(noisy), clean=clean8, denoised=denoised, psnr=psnr, ssim=ssim))
    return results


# ----------------------------------------------------------------------------------------------- data
def build_data(out, config, seed, log=print):
    """Write the noisy training LMDB and the validation PNG pair under ``out/data``; keep the rest in memory."""
    data = osp.join(out, 'data')
    photos = demo_data.training_images(seed=seed, max_side=config['max_train_side'], names=config['train_images'])
    tile = config['train_tile']
    lmdb_path = osp.join(data, 'train_noisy.lmdb')
    keys = pack_noisy_tiles(photos, osp.join(data, 'train_noisy_tiles'), lmdb_path, tile)
    log(f'training set: {len(keys)} noisy {tile}x{tile} tiles of {", ".join(config["train_images"])} -> {lmdb_path}')
    val = demo_data.validation_blocks(seed=seed, max_side=config['max_eval_side'], block=config['val_block'])
    val_folders = {kind: osp.join(data, 'val', kind) for kind in ('noisy', 'clean')}
    for key, noisy, clean in val:
        write_png(osp.join(val_folders['noisy'], key + '.png'), noisy)
        write_png(osp.join(val_folders['clean'], key + '.png'), clean)
    test = demo_data.test_blocks(seed=seed, max_side=config['max_eval_side'], block=config['test_block'],
                                 limit=config['max_test_blocks'], names=config['test_images'])
    log(f'validation (tuning only): {len(val)} block of {demo_data.VAL_IMAGE}; held-apart test: {len(test)} '
        f'blocks of {", ".join(config["test_images"])}')
    return dict(lmdb=lmdb_path, val_folders=val_folders, train=photos, val=val, test=test)


# ----------------------------------------------------------------------------------------------- training
def iterations_for_minutes(options, data, minutes):
    """Time a few of the model's own training steps on a demo batch and return (iterations that fit, rate)."""
    size, batch = options['datasets']['train']['crop_size'], options['datasets']['train']['batch_size_per_gpu']
    crop = to_tensor(data["train"][0][1][:size, :size])
    threads = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))  # as the training subprocess (train())
    try:
        rate = steps_per_second(in_process_model(options, is_train=True), crop.repeat(batch, 1, 1, 1))
    finally:
        torch.set_num_threads(threads)
    # BasicSR adds data loading and logging (~10%); its start-up and the validations are not in the budget.
    rate *= 0.9
    return max(10, int(minutes * 60 * rate)), rate


def read_curve(out, options):
    """[iteration, L_m, validation PSNR] rows from the run's TensorBoard events (BasicSR logs ``losses/l_mask`` at
    every print and ``metrics/<val set>/psnr`` at every validation; the closing validation, logged one step past
    ``total_iter``, is of the same network as the last one)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(osp.join(out, 'tb_logger', options['name']))
    events.Reload()
    total_iter = options['train']['total_iter']
    rows = {}
    for event in events.Scalars('losses/l_mask'):
        rows.setdefault(event.step, [event.step, None, None])[1] = event.value
    for event in events.Scalars(f'metrics/{options["datasets"]["val"]["name"]}/psnr'):
        step = min(event.step, total_iter)
        rows.setdefault(step, [step, None, None])[2] = event.value
    return [rows[step] for step in sorted(rows)]


# ----------------------------------------------------------------------------------------------- output
def plot_curve(curve, path, *, width=640, height=220):
    """The training curve as a PNG (OpenCV drawing, no plotting library): L_m (top) and validation PSNR (bottom)
    against the iteration, each panel scaled to its own range, with that range written beside it."""
    import cv2
    canvas = np.full((2 * height + 40, width, 3), 255, np.uint8)
    last = max(row[0] for row in curve) or 1
    for panel, (column, name, colour) in enumerate(((1, 'L_m (training loss)', (40, 120, 200)),
                                                   (2, 'validation PSNR (dB)', (60, 150, 60)))):
        points = [(row[0], row[column]) for row in curve if row[column] is not None]
        top, left, plot_w, plot_h = 20 + panel * (height + 20), 60, width - 80, height - 40
        cv2.rectangle(canvas, (left, top), (left + plot_w, top + plot_h), (180, 180, 180), 1)
        cv2.putText(canvas, name, (left, top - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        if not points:
            continue
        low, high = min(v for _, v in points), max(v for _, v in points)
        span = (high - low) or 1.0
        pixels = [(left + round(plot_w * it / last), top + plot_h - round(plot_h * (v - low) / span))
                  for it, v in points]
        cv2.polylines(canvas, [np.array(pixels, np.int32)], False, colour, 2, cv2.LINE_AA)
        for value, y in ((high, top + 12), (low, top + plot_h)):
            cv2.putText(canvas, f'{value:.4g}', (2, y), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, f'iteration {last}', (left + plot_w - 90, top + plot_h + 14), cv2.FONT_HERSHEY_SIMPLEX,
                    0.38, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(path, canvas)


OWNED = ('data', 'experiments', 'tb_logger', 'images', 'train_demo.yml', 'distill_demo.yml', 'train_stdout.log',
         'results.md', 'results.json', 'curve.csv', 'curve.png')  # what a demo run writes into --out


def prepare_output(out, overwrite, seeds):
    """Take ``out`` (:func:`amsnet_basicsr.output_folder.take`): a new or empty folder, or an earlier demo output
    with ``--overwrite`` (only what that run wrote is deleted). Returns the :class:`OwnedFolder`."""
    return output_folder.take(out, command='amsnet-demo', names=OWNED + tuple(f'seed_{seed}' for seed in seeds),
                              settings={}, inputs=[], mode='force' if overwrite else 'new', force_flag='--overwrite',
                              resume_flag=None)


def write_reports(out, summary, rows, test_images):
    """results.md (returned), curve.csv and results.json."""
    curve = summary['curve']
    lines = [f'AMSNet demo: {len(summary["test_blocks"])} held-apart test blocks of {", ".join(test_images)} '
             f'(never used for tuning), {summary["iterations"]} training iterations, seed {summary["seed"]}',
             '', '| method | PSNR (dB) | SSIM | s / block |', '| --- | --- | --- | --- |']
    lines += [f'| {label} | {np.mean(psnrs):.2f} | {np.mean(ssims):.4f} | {seconds:.2f} |'
              for label, psnrs, ssims, seconds in rows]
    lines += ['', 'classical filters tuned on the validation block (factor x the noise estimate): ' + ', '.join(
        f'{name} {value:g}' for name, value in summary['baseline_parameters'].items())]
    lines += ['', f'training {summary["train_seconds"]:.0f} s (BasicSR subprocess), total '
              f'{summary["total_seconds"]:.0f} s', '',
              f'validation curve ({demo_data.VAL_IMAGE}, MMDB + R3; L_m = training loss):',
              '| iteration | L_m | val PSNR (dB) |', '| --- | --- | --- |']
    lines += [f'| {it} | {"" if loss is None else f"{loss:.4f}"} | {"" if psnr is None else f"{psnr:.2f}"} |'
              for it, loss, psnr in curve]
    table = '\n'.join(lines)
    with open(osp.join(out, 'results.md'), 'w') as handle:
        handle.write(table + '\n')
    with open(osp.join(out, 'curve.csv'), 'w') as handle:
        handle.write('iteration,l_mask,val_psnr\n')
        handle.writelines(f'{it},{"" if loss is None else loss},{"" if psnr is None else psnr}\n'
                          for it, loss, psnr in curve)
    with open(osp.join(out, 'results.json'), 'w') as handle:
        json.dump(summary, handle, indent=2)
    return table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='amsnet-demo', description='Train AMSNet self-supervised on noisy sample photos (bundled with '
        'scikit-image, synthetic camera noise) on the CPU, then denoise held-apart test blocks.')
    parser.add_argument('--out', default=osp.join('results', 'amsnet_demo'),
                        help='output folder (default: results/amsnet_demo under the current directory)')
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument('--iters', type=int, default=None, help='training iterations (default: 2000; quick: 20)')
    budget.add_argument('--minutes', type=float, default=None,
                        help='training time budget: the iterations are set from a speed measurement on this machine')
    parser.add_argument('--student-iters', type=int, default=None,
                        help='distillation iterations of the AMSNet-D student (default: 400; quick: 10; 0 = no '
                        'distillation)')
    parser.add_argument('--seed', type=int, default=0, help='noise, crops, masks and initialisation seed')
    parser.add_argument('--seeds', type=int, default=1,
                        help='run seeds --seed .. --seed + N - 1 (each in <out>/seed_<s>) and report mean ± spread')
    parser.add_argument('--quick', action='store_true', help='tiny configuration (seconds; checks the pipeline only)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing demo output folder')
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error('--seeds must be >= 1')
    if args.iters is not None and args.iters < 1:
        parser.error('--iters must be >= 1')
    if args.student_iters is not None and args.student_iters < 0:
        parser.error('--student-iters must be >= 0')
    if args.minutes is not None and not (args.minutes > 0 and math.isfinite(args.minutes)):
        parser.error('--minutes must be > 0')
    return args


def run_demo(argv=None):
    """The whole demo (module docstring) for one seed, or for ``--seeds`` N seeds with a mean ± spread summary;
    returns the summary that is also written to ``results.json``."""
    args = parse_args(argv)
    start = time.time()
    out = osp.abspath(args.out)
    prepare_output(out, args.overwrite, range(args.seed, args.seed + args.seeds) if args.seeds > 1 else ())

    def log(message):
        print(f'[amsnet-demo {time.time() - start:6.1f}s] {message}', flush=True)

    if args.seeds == 1:
        return run_seed(args, out, args.seed, log, start)
    summaries = []
    for seed in range(args.seed, args.seed + args.seeds):
        log(f'----- seed {seed}')
        seed_out = osp.join(out, f'seed_{seed}')
        os.makedirs(seed_out)
        summaries.append(run_seed(args, seed_out, seed, log, time.time()))
    summary = seeds_summary(summaries, total_seconds=time.time() - start)
    table = write_seeds_report(out, summary, RECIPES['quick' if args.quick else 'full']['test_images'])
    print(table, flush=True)
    return summary


def seeds_summary(summaries, *, total_seconds):
    """Mean, sample standard deviation and range over seeds of every method's mean PSNR / SSIM."""
    rows = []
    for index, first in enumerate(summaries[0]['rows']):
        psnrs = [summary['rows'][index]['psnr'] for summary in summaries]
        ssims = [summary['rows'][index]['ssim'] for summary in summaries]
        rows.append(dict(method=first['method'], psnr_mean=float(np.mean(psnrs)), psnr_std=float(np.std(psnrs, ddof=1)),
                         psnr_min=float(min(psnrs)), psnr_max=float(max(psnrs)), ssim_mean=float(np.mean(ssims)),
                         ssim_std=float(np.std(ssims, ddof=1)), psnr_per_seed=psnrs, ssim_per_seed=ssims,
                         seconds_per_block=float(np.mean([summary['rows'][index].get('seconds_per_block', 0.0)
                                                          for summary in summaries]))))
    return dict(seeds=[summary['seed'] for summary in summaries], iterations=summaries[0]['iterations'],
                test_blocks=summaries[0]['test_blocks'], total_seconds=total_seconds, rows=rows)


def write_seeds_report(out, summary, test_images):
    """results.md (returned) and results.json of a several-seed run: mean ± standard deviation (min-max)."""
    seeds = summary['seeds']
    lines = [f'AMSNet demo over seeds {", ".join(map(str, seeds))}: {len(summary["test_blocks"])} held-apart test '
             f'blocks of {", ".join(test_images)}, {summary["iterations"]} training iterations per seed; mean ± '
             'standard deviation over seeds (min-max)', '', '| method | PSNR (dB) | SSIM | s / block |',
             '| --- | --- | --- | --- |']
    lines += [f'| {row["method"]} | {row["psnr_mean"]:.2f} ± {row["psnr_std"]:.2f} ({row["psnr_min"]:.2f}-'
              f'{row["psnr_max"]:.2f}) | {row["ssim_mean"]:.4f} ± {row["ssim_std"]:.4f} | '
              f'{row["seconds_per_block"]:.2f} |'
              for row in summary['rows']]
    lines += ['', f'total {summary["total_seconds"]:.0f} s; each seed in seed_<s>/ (results, curve, images, weights)']
    table = '\n'.join(lines)
    with open(osp.join(out, 'results.md'), 'w') as handle:
        handle.write(table + '\n')
    with open(osp.join(out, 'results.json'), 'w') as handle:
        json.dump(summary, handle, indent=2)
    return table


def run_seed(args, out, seed, log, start):
    """One demo run with ``seed`` in ``out`` (data, options, training, held-apart evaluation, reports)."""
    config = RECIPES['quick' if args.quick else 'full']
    data = build_data(out, config, seed, log)
    iters = args.iters or config['iters']
    if args.minutes is not None:
        torch.manual_seed(seed)
        iters, rate = iterations_for_minutes(mask_stage_options(config, data, seed=seed, iters=iters), data,
                                             args.minutes)
        log(f'measured {rate:.1f} it/s -> {iters} iterations for {args.minutes} min of training')
    options = mask_stage_options(config, data, seed=seed, iters=iters)
    options_path = write_options(out, options, 'train_demo.yml')
    log(f'options: {options_path}')

    train_start = time.time()
    train(out, options_path, log)
    train_seconds = time.time() - train_start
    curve = read_curve(out, options)

    # ----- held-apart test: noisy input, untrained D_E, trained D_E (MMDB only = B, MMDB + R3 = B-E)
    weights = osp.join(out, 'experiments', MASK_EXPERIMENT, 'models', 'net_g_latest.pth')
    trained = torch.load(weights, map_location='cpu', weights_only=True)['params']
    torch.manual_seed(seed)
    untrained = build_network(copy.deepcopy(options['network_g'])).state_dict()
    val = evaluate(in_process_model(options, is_train=False, state_dict=untrained), data['val'])
    curve.insert(0, [0, None, float(np.mean([r['psnr'] for r in val]))])
    rows = []  # (method, PSNR per block, SSIM per block, seconds per block)
    for label, state, r3 in (('untrained D_E (unmasked-neighbour mean), MMDB', untrained, False),
                             ('untrained D_E (unmasked-neighbour mean), MMDB + R3', untrained, True),
                             (f'trained ({iters} it), MMDB (B)', trained, False),
                             (f'trained ({iters} it), MMDB + R3 (B-E)', trained, True)):
        model = in_process_model(options, is_train=False, r3_enabled=r3, state_dict=state)
        evaluation_start = time.perf_counter()
        results = evaluate(model, data['test'])
        seconds = (time.perf_counter() - evaluation_start) / len(results)
        rows.append((label, [r['psnr'] for r in results], [r['ssim'] for r in results], seconds))
    noisy_scores = [scores(r['noisy'], r['clean']) for r in results]
    rows.insert(0, ('noisy input', [p for p, _ in noisy_scores], [s for _, s in noisy_scores], 0.0))
    chosen, columns = {}, {}  # columns: method -> uint8 BGR outputs per test block, for the side-by-side images
    for name in baselines.FILTERS:  # what a user would pick instead, tuned on the validation block only
        chosen[name], outputs, seconds = baselines.tune_and_apply(
            name, data['val'], data['test'], lambda output, clean: scores(to_uint8(output), to_uint8(clean))[0])
        block_scores = [scores(to_uint8(output), to_uint8(clean))
                        for output, (_, _, clean) in zip(outputs, data['test'])]
        rows.insert(len(chosen), (f'{name} (tuned on validation)', [p for p, _ in block_scores],
                                  [s for _, s in block_scores], seconds))  # after the noisy input
        log(f'{name}: factor {chosen[name]:g} x the noise estimate, chosen on {demo_data.VAL_IMAGE}')
        columns[name] = [to_uint8(output) for output in outputs]
    columns['AMSNet-B-E'] = [result['denoised'] for result in results]

    if args.student_iters if args.student_iters is not None else config['student_iters']:
        row, student_results = distill_student(args, out, config, data, options, weights, seed, log)
        rows.append(row)
        columns['AMSNet-D'] = [result['denoised'] for result in student_results]

    images = osp.join(out, 'images')
    names = ['noisy', *columns, 'clean']
    for index, result in enumerate(results):
        gap = np.full((result['noisy'].shape[0], 4, 3), 255, np.uint8)
        panels = [result['noisy'], *(outputs[index] for outputs in columns.values()), result['clean']]
        imwrite(np.concatenate([part for panel in panels for part in (panel, gap)][:-1], axis=1),
                osp.join(images, f'{result["key"]}_side_by_side.png'))
    log(f'side-by-side images, left to right: {" | ".join(names)}')
    plot_curve(curve, osp.join(out, 'curve.png'))

    keys = [key for key, _, _ in data['test']]
    summary = dict(iterations=iters, seed=seed, train_seconds=train_seconds, total_seconds=time.time() - start,
                   test_blocks=keys, curve=curve, baseline_parameters=chosen,
                   rows=[dict(method=label, psnr=float(np.mean(p)), ssim=float(np.mean(s)), seconds_per_block=seconds,
                              psnr_per_block=[float(v) for v in p]) for label, p, s, seconds in rows])
    table = write_reports(out, summary, rows, config['test_images'])
    print(table, flush=True)
    log(f'images: {images}; table: {osp.join(out, "results.md")}')
    return summary


def distill_student(args, out, config, data, teacher_options, teacher_weights, seed, log):
    """Stage ``distill`` (AMSNet-D) on the demo data (:func:`~amsnet_basicsr.recipes.distill_stage_options`): the
    teacher's B-E targets on the noisy training tiles (``amsnet-distill-prepare``'s function), the student trained
    by ``train.py``, then evaluated on the held-apart blocks with the model's own single-pass inference; returns its
    table row and per-block results."""
    from amsnet_basicsr.distill import targets as teacher_targets
    iters = args.student_iters if args.student_iters is not None else config['student_iters']
    data['teacher_lmdb'] = osp.join(out, 'data', 'train_teacher.lmdb')
    options = distill_stage_options(config, data, teacher_options, teacher_weights, seed=seed, iters=iters)
    teacher_targets.prepare_targets(options, progress=False, log=log)
    options_path = write_options(out, options, 'distill_demo.yml')
    log(f'distillation options: {options_path}')
    train(out, options_path, log)
    weights = osp.join(out, 'experiments', STUDENT_EXPERIMENT, 'models', 'net_g_latest.pth')
    student = torch.load(weights, map_location='cpu', weights_only=True)['params']
    model = in_process_model(options, is_train=False, state_dict=student)
    evaluation_start = time.perf_counter()
    results = evaluate(model, data['test'])
    seconds = (time.perf_counter() - evaluation_start) / len(results)
    parameters = sum(value.numel() for value in model.net_g.parameters())
    return (f'AMSNet-D student of B-E ({iters} it, NAFNet {parameters / 1e6:.1f} M, one pass)',
            [r['psnr'] for r in results], [r['ssim'] for r in results], seconds), results


def main(argv=None):
    """Console script ``amsnet-demo``: exit status 0, or 2 with one line naming the problem (:mod:`..errors`)."""
    return run_command('amsnet-demo', run_demo, argv)


if __name__ == '__main__':
    sys.exit(main())
