"""The embedded demo: ``amsnet-train-folder`` on bundled noisy photos, scored against their clean versions.

``python -m amsnet_basicsr.demo`` (``amsnet demo``, console script ``amsnet-demo``) runs the product path a user's own
photos go through, on a CPU, with no download, then measures it:

1. Writes the bundled photos (:mod:`amsnet_basicsr.demo_data`: scikit-image's sample photos with realistic,
   signal-dependent and spatially correlated sRGB camera noise) as 8-bit PNGs into ``<out>/photos``: the NOISY
   training photos and the NOISY validation photo, nothing else. No clean image exists while the model trains.
2. Runs :func:`amsnet_basicsr.train_folder.run` on that folder with ``--out <out>/model`` (``--quick``, ``--iters``,
   ``--student-iters`` and ``--seed`` are handed on): its recipe, tiles, checkpoint choice by masked hold-out loss,
   distillation and ``denoise.yml``, exactly as ``amsnet-train-folder <photos> --out <out>/model`` does.
3. Only then makes the clean images, in memory: the validation block (its clean version tunes OpenCV NLM's and
   BM3D's strength, :mod:`amsnet_basicsr.baselines`, and nothing else) and the held-apart test blocks (photos that
   were never trained or tuned on, looked at once). Denoises the noisy test blocks with
   :class:`~amsnet_basicsr.inference.AMSNetDenoiser`: the chosen AMSNet-B checkpoint as B-E (MMDB + R3) and
   ``denoise.yml`` (the distilled one-pass student; with ``--student-iters 0`` it is the B-E model itself).
4. Prints PSNR / SSIM (``basicsr.metrics`` on 8-bit images, crop_border 0: the paper's convention) and seconds per
   block of the noisy input, NLM, BM3D, B-E and the student; writes ``results.md``, ``results.json`` and, per
   test block, a side-by-side PNG (noisy | NLM | BM3D | AMSNet-B-E | AMSNet-D | clean) into ``images/``.

``--seeds N`` repeats all of it for N seeds (each in ``<out>/seed_<s>``) and reports mean ± spread. Measured numbers
and why the recipe differs from the paper's: ``docs/demo.md``.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import numpy as np

from amsnet_basicsr import baselines, demo_data, output_folder, recipes, train_folder
from amsnet_basicsr.errors import run_command
from amsnet_basicsr.inference import AMSNetDenoiser
from amsnet_basicsr.recipes import scores, to_uint8, write_png

from basicsr.utils import imwrite

OWNED = ('photos', 'model', 'images', 'results.md', 'results.json')  # what a demo run writes into --out


def write_photos(folder, config, seed):
    """Step 1: the noisy training photos and the noisy validation photo as PNGs in ``folder``; returns their names."""
    photos = demo_data.training_images(seed=seed, max_side=config['max_train_side'], names=config['train_images'])
    photos.append((demo_data.VAL_IMAGE, demo_data.noisy_photo(demo_data.VAL_IMAGE, seed=seed,
                                                              max_side=config['max_eval_side'])))
    for name, noisy in photos:
        write_png(osp.join(folder, f'{name}.png'), noisy)
    return [name for name, _ in photos]


def denoise_blocks(denoiser, blocks):
    """(outputs, seconds per block) of ``denoiser`` on the noisy half of every (key, noisy, clean) block."""
    start = time.perf_counter()
    outputs = [denoiser(noisy) for _, noisy, _ in blocks]
    return outputs, (time.perf_counter() - start) / len(blocks)


def run_seed(args, out, seed, log, start):
    """Steps 1-4 of the module docstring with ``seed`` in ``out``; returns the summary written to results.json."""
    config = recipes.RECIPES['quick' if args.quick else 'folder']
    photos = osp.join(out, 'photos')
    log(f'noisy photos ({", ".join(write_photos(photos, config, seed))}) -> {photos}')
    flags = [photos, '--out', osp.join(out, 'model'), '--seed', str(seed), '--quiet',
             *(['--quick'] if args.quick else []), *(['--iters', str(args.iters)] if args.iters else []),
             *(['--student-iters', str(args.student_iters)] if args.student_iters is not None else [])]
    log(f'amsnet-train-folder {" ".join(flags)}')
    train_start = time.time()
    trained = train_folder.run(train_folder.parse_args(flags), lambda message: log(f'  {message}'))
    train_seconds = time.time() - train_start

    val = demo_data.validation_blocks(seed=seed, max_side=config['max_eval_side'], block=config['val_block'])
    test = demo_data.test_blocks(seed=seed, max_side=config['max_eval_side'], block=config['test_block'],
                                 limit=config['max_test_blocks'], names=config['test_images'])
    log(f'tuning NLM / BM3D on {len(val)} block of {demo_data.VAL_IMAGE}; scoring {len(test)} held-apart blocks of '
        f'{", ".join(config["test_images"])}')
    rows, columns, chosen = compare(trained, val, test)
    write_side_by_side(osp.join(out, 'images'), test, columns)
    log(f'side-by-side images in {osp.join(out, "images")}, left to right: {" | ".join(columns)}')
    settings = trained.settings
    summary = dict(seed=seed, iterations=settings['iters'], student_iterations=settings['student_iters'],
                   teacher_checkpoint=osp.relpath(trained.teacher_checkpoint, out),
                   denoise_options=osp.relpath(trained.options_path, out), train_seconds=train_seconds,
                   total_seconds=time.time() - start, test_blocks=[key for key, _, _ in test],
                   baseline_parameters=chosen, rows=rows)
    return write_report(out, summary, config['test_images'])


def compare(trained, val, test):
    """Step 4: (table rows, uint8 BGR outputs per method for the side-by-side images, NLM / BM3D factors) of the noisy
    input, NLM and BM3D tuned on ``val``, the chosen checkpoint as B-E and ``denoise.yml``'s student on ``test``."""
    clean8 = [to_uint8(clean) for _, _, clean in test]
    rows, columns, chosen = [], {'noisy': [to_uint8(noisy) for _, noisy, _ in test]}, {}

    def add(method, outputs, seconds, column=None):
        outputs8 = [to_uint8(output) for output in outputs]
        block_scores = [scores(output, clean) for output, clean in zip(outputs8, clean8)]
        rows.append(dict(method=method, psnr=float(np.mean([p for p, _ in block_scores])),
                         ssim=float(np.mean([s for _, s in block_scores])), seconds_per_block=seconds,
                         psnr_per_block=[float(p) for p, _ in block_scores]))
        if column:
            columns[column] = outputs8

    add('noisy input', [noisy for _, noisy, _ in test], 0.0)
    for name in baselines.FILTERS:
        chosen[name], outputs, seconds = baselines.tune_and_apply(
            name, val, test, lambda output, clean: scores(to_uint8(output), to_uint8(clean))[0])
        add(f'{name} (tuned on validation)', outputs, seconds, column=name)
    settings = trained.settings
    teacher = AMSNetDenoiser.from_options(recipes.inference_options(trained.teacher_options,
                                                                    trained.teacher_checkpoint))
    add(f'AMSNet-B-E ({settings["iters"]} it, checkpoint by masked hold-out loss)', *denoise_blocks(teacher, test),
        column='AMSNet-B-E')
    if settings['student_iters']:
        add(f'AMSNet-D student ({settings["student_iters"]} it, one pass: denoise.yml)',
            *denoise_blocks(AMSNetDenoiser.from_options(trained.options_path), test), column='AMSNet-D')
    columns['clean'] = clean8
    return rows, columns, chosen


def write_side_by_side(folder, test, columns):
    """One PNG per test block: the ``columns`` images side by side, 4-px white gaps."""
    for index, (key, _, _) in enumerate(test):
        panels = [images[index] for images in columns.values()]
        gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
        imwrite(np.concatenate([part for panel in panels for part in (panel, gap)][:-1], axis=1),
                osp.join(folder, f'{key}_side_by_side.png'))


def write_report(out, summary, test_images):
    """Print and write results.md, and write results.json, of one seed's run; returns the summary."""
    lines = [f'AMSNet demo: {len(summary["test_blocks"])} held-apart test blocks of {", ".join(test_images)} '
             f'(never trained or tuned on), seed {summary["seed"]}', '',
             '| method | PSNR (dB) | SSIM | s / block |', '| --- | --- | --- | --- |']
    lines += [f'| {row["method"]} | {row["psnr"]:.2f} | {row["ssim"]:.4f} | {row["seconds_per_block"]:.2f} |'
              for row in summary['rows']]
    lines += ['', 'classical filters tuned on the validation block (factor x the noise estimate): ' + ', '.join(
        f'{name} {value:g}' for name, value in summary['baseline_parameters'].items()),
        f'amsnet-train-folder on the noisy photos: {summary["train_seconds"]:.0f} s (chosen checkpoint '
        f'{summary["teacher_checkpoint"]}; {summary["denoise_options"]} denoises with amsnet-denoise); total '
        f'{summary["total_seconds"]:.0f} s']
    return write_files(out, summary, '\n'.join(lines))


def write_files(out, summary, table):
    print(table, flush=True)
    with open(osp.join(out, 'results.md'), 'w') as handle:
        handle.write(table + '\n')
    with open(osp.join(out, 'results.json'), 'w') as handle:
        json.dump(summary, handle, indent=2)
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
    """Print and write results.md and results.json of a several-seed run: mean ± standard deviation (min-max)."""
    lines = [f'AMSNet demo over seeds {", ".join(map(str, summary["seeds"]))}: {len(summary["test_blocks"])} '
             f'held-apart test blocks of {", ".join(test_images)}, {summary["iterations"]} training iterations per '
             'seed; mean ± standard deviation over seeds (min-max)', '', '| method | PSNR (dB) | SSIM | s / block |',
             '| --- | --- | --- | --- |']
    lines += [f'| {row["method"]} | {row["psnr_mean"]:.2f} ± {row["psnr_std"]:.2f} ({row["psnr_min"]:.2f}-'
              f'{row["psnr_max"]:.2f}) | {row["ssim_mean"]:.4f} ± {row["ssim_std"]:.4f} | '
              f'{row["seconds_per_block"]:.2f} |' for row in summary['rows']]
    lines += ['', f'total {summary["total_seconds"]:.0f} s; each seed in seed_<s>/ (photos, model, images, results)']
    return write_files(out, summary, '\n'.join(lines))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='amsnet-demo', description='Train AMSNet with amsnet-train-folder on noisy sample photos (bundled with '
        'scikit-image, synthetic camera noise) on the CPU, then score it on held-apart blocks beside NLM and BM3D.')
    parser.add_argument('--out', default=osp.join('results', 'amsnet_demo'),
                        help='output folder (default: results/amsnet_demo under the current directory)')
    parser.add_argument('--iters', type=int, default=None, help='amsnet-train-folder --iters (default: its own)')
    parser.add_argument('--student-iters', type=int, default=None,
                        help='amsnet-train-folder --student-iters (default: its own; 0 = no student)')
    parser.add_argument('--seed', type=int, default=0, help='noise seed and amsnet-train-folder --seed')
    parser.add_argument('--seeds', type=int, default=1,
                        help='run seeds --seed .. --seed + N - 1 (each in <out>/seed_<s>) and report mean ± spread')
    parser.add_argument('--quick', action='store_true', help='amsnet-train-folder --quick and small photos (seconds; '
                        'checks the pipeline only)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing demo output folder')
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error('--seeds must be >= 1')
    if args.iters is not None and args.iters < 1:
        parser.error('--iters must be >= 1')
    if args.student_iters is not None and args.student_iters < 0:
        parser.error('--student-iters must be >= 0')
    return args


def run_demo(argv=None):
    """The whole demo (module docstring) for one seed, or for ``--seeds`` N seeds with a mean ± spread summary;
    returns the summary that is also written to ``results.json``."""
    args = parse_args(argv)
    start = time.time()
    out = osp.abspath(args.out)
    seeds = range(args.seed, args.seed + args.seeds)
    owned = output_folder.take(out, command='amsnet-demo', names=OWNED + tuple(f'seed_{seed}' for seed in seeds),
                               settings={}, inputs=[], mode='force' if args.overwrite else 'new',
                               force_flag='--overwrite', resume_flag=None)

    def log(message):
        print(f'[amsnet-demo {time.time() - start:6.1f}s] {message}', flush=True)

    try:
        if args.seeds == 1:
            return run_seed(args, out, args.seed, log, start)
        summaries = []
        for seed in seeds:
            log(f'----- seed {seed}')
            os.makedirs(osp.join(out, f'seed_{seed}'))
            summaries.append(run_seed(args, osp.join(out, f'seed_{seed}'), seed, log, time.time()))
        test_images = recipes.RECIPES['quick' if args.quick else 'folder']['test_images']
        return write_seeds_report(out, seeds_summary(summaries, total_seconds=time.time() - start), test_images)
    finally:
        owned.release()


def main(argv=None):
    """Console script ``amsnet-demo``: exit status 0, or 2 with one line naming the problem (:mod:`..errors`)."""
    return run_command('amsnet-demo', run_demo, argv)


if __name__ == '__main__':
    sys.exit(main())
