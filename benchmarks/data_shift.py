#!/usr/bin/env python
"""Data-shift bench: a demo run's settings, judged on photos through other camera pipelines.

    python -m amsnet_basicsr.demo --seeds 3 --out results/amsnet_demo                # the settings (tuning variant)
    python benchmarks/data_shift.py --demo results/amsnet_demo/seed_{0,1,2} --out results/data_shift
    python benchmarks/data_shift.py --demo results/amsnet_demo/seed_0 --train-on test-photos other-photos \
        --out results/data_shift_train

Every setting comes from one variant, the demo's own (photos enlarged 2x, bilinear demosaic): the models that
``amsnet-train-folder`` trained on the demo's noisy photos (the demo's ``model/`` folder: the chosen B checkpoint and
its distilled student); OpenCV NLM's and BM3D's factors on each image's noise estimate
(:mod:`amsnet_basicsr.baselines`), tuned on that variant's validation block by the demo (``results.json``);
``amsnet-denoise --adapt 300`` (validated on the demo's validation photo). Nothing is tuned again. They are evaluated
on the held-apart test photos (:data:`amsnet_basicsr.demo_data.TEST_IMAGES`, the demo's seed) through every variant
of :data:`VARIANTS` -- native sharpness, an edge-aware demosaic, JPEG compression, an ISP sharpening step (which
lengthens the noise correlation), each photo from a camera with its own white balance and colour matrix -- on the
demo's 256x256 blocks. ``--train-on`` adds what a user of ``amsnet-train-folder`` gets, its default recipe trained
per variant on noisy photos only: ``test-photos``, the photos to be denoised themselves (the command's protocol), and
``other-photos``, the demo's training photos through the variant's camera (a model trained once per camera).

Columns per method: PSNR / SSIM (BasicSR, 8-bit RGB), the colour cast (largest absolute per-channel mean error of a
block) and the signed per-channel mean error, the low-frequency error (RMS of the error after a sigma = 4 px Gaussian
blur; the noisy input's is the reference), all in grey levels, and seconds per block. Several ``--demo`` folders
(seeds) give the mean and sample standard deviation. The demo has no P stage, so there is no P-E row.
Measured tables: ``benchmarks/results/data_shift.md``.
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
import time
from functools import partial

import cv2
import numpy as np
import torch

from amsnet_basicsr.errors import SetupError, run_command

VARIANTS = {  # name: how the test photos go through the camera (keywords of variant_blocks' pipeline)
    'soft, bilinear (the demo: tuning variant)': dict(enlarge=2),
    'native sharpness, bilinear': dict(enlarge=1),
    'soft, edge-aware demosaic': dict(enlarge=2, demosaic='opencv_ea'),
    'soft, JPEG quality 90': dict(enlarge=2, jpeg_quality=90),
    'soft, ISP sharpening': dict(enlarge=2, sharpen_amount=0.6),
    'soft, random white balance and colour matrix': dict(enlarge=2, random_camera=True),
}
ENSEMBLE_STUDENT = 'AMSNet-D student + self-ensemble (8 passes)'
ADAPT_STEPS, ADAPT_LR = 300, 1e-3  # amsnet-denoise --adapt, chosen on the validation photo (docs/demo.md)


def sharpen(image, amount):
    """Unsharp masking (Gaussian sigma 1 px), as a phone ISP applies it after demosaicking."""
    return np.clip(image + amount * (image - cv2.GaussianBlur(image, (0, 0), 1.0)), 0, 1).astype(np.float32)


def jpeg(image, quality):
    """The 8-bit RGB image through a JPEG encode/decode at ``quality``, back to float RGB."""
    ok, data = cv2.imencode('.jpg', np.rint(image[..., ::-1] * 255).astype(np.uint8),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255


def variant_photos(variant, *, seed, names=None):
    """[(name, noisy, clean)] the held-apart test photos (or the photos ``names``) through the camera pipeline of
    ``variant``, as 8-bit images.

    With ``random_camera`` each photo gets its own white balance and colour matrix
    (:func:`camera_noise.random_camera`, drawn from its own ``(seed, photo)`` stream), as photos from several phones.
    """
    from amsnet_basicsr import camera_noise, demo_data
    pipeline = {**dict(demosaic='bilinear', jpeg_quality=None, sharpen_amount=0.0, random_camera=False),
                **VARIANTS[variant]}
    photos = []
    for name in names or demo_data.TEST_IMAGES:
        camera = dict(demosaic=pipeline['demosaic'])
        if pipeline['random_camera']:
            camera.update(camera_noise.random_camera(demo_data.noise_rng(seed, f'camera of {name}')))
        noisy, clean = camera_noise.camera_noise_pair(demo_data.photo(name, max_side=512, enlarge=pipeline['enlarge']),
                                                      demo_data.noise_rng(seed, name), **camera)
        if pipeline['sharpen_amount']:
            noisy, clean = (np.round(sharpen(image, pipeline['sharpen_amount']) * 255) / 255
                            for image in (noisy, clean))  # the camera's 8-bit output
        if pipeline['jpeg_quality']:
            noisy = jpeg(noisy, pipeline['jpeg_quality'])
        photos.append((name, noisy.astype(np.float32), clean.astype(np.float32)))
    return photos


def variant_blocks(variant, *, seed, block, limit, photos=None):
    """[(key, noisy, clean)] test blocks (the demo's: ``limit`` per photo) of :func:`variant_photos`."""
    from amsnet_basicsr import demo_data
    blocks = []
    for name, noisy, clean in photos or variant_photos(variant, seed=seed):
        size = min(block, *noisy.shape[:2])
        for top, left in demo_data.block_corners(*noisy.shape[:2], size=size, limit=limit):
            window = np.s_[top:top + size, left:left + size]
            blocks.append((f'{name}_{top:04d}_{left:04d}', noisy[window], clean[window]))
    return blocks


def errors(output, clean):
    """(colour cast, low-frequency error, per-channel mean error R, G, B) of uint8 BGR ``output`` against uint8 BGR
    ``clean``, in grey levels: the cast is the largest absolute per-channel mean error."""
    error = output.astype(np.float64) - clean.astype(np.float64)
    mean_rgb = error.reshape(-1, 3).mean(0)[::-1]
    low = cv2.GaussianBlur(error, (0, 0), 4.0)
    return (float(np.abs(mean_rgb).max()), float(np.sqrt((low ** 2).mean())), *map(float, mean_rgb))


def load_demo(folder):
    """A demo run's models and tuned filter parameters (:class:`SetupError` naming what is missing). Its ``model/``
    folder is an ``amsnet-train-folder`` output: ``train_folder.yml`` with the checkpoint it chose (named in the
    demo's ``results.json``) is the B-E teacher, ``distill_folder.yml`` with ``model.pth`` the student."""
    from amsnet_basicsr.networks import load_options

    def needed(label, *parts):
        path = osp.join(folder, *parts)
        if not osp.isfile(path):
            raise SetupError(f'--demo {folder}: no {label} ({path}); run python -m amsnet_basicsr.demo --out {folder}')
        return path

    options = {label: load_options(needed(f'{label} options', 'model', name))
               for label, name in (('teacher', 'train_folder.yml'), ('student', 'distill_folder.yml'))}
    with open(needed('results', 'results.json')) as handle:
        results = json.load(handle)
    if 'baseline_parameters' not in results:
        raise SetupError(f'{folder}: a one-seed demo run is needed (use the seed_<s> folder of --seeds runs)')
    paths = {'teacher': needed('teacher weights', results['teacher_checkpoint']),
             'student': needed('student weights', 'model', 'model.pth')}
    weights = {label: torch.load(path, map_location='cpu', weights_only=True)['params']
               for label, path in paths.items()}
    return dict(options=options, weights=weights, teacher_checkpoint=paths['teacher'],
                filters=results['baseline_parameters'], seed=results['seed'])


def train_on_photos(photos, folder, *, seed, quick, log):
    """``amsnet-train-folder`` (its default recipe) on the noisy ``photos`` themselves, in ``folder``; returns the
    (options, weights) of its chosen B-E teacher and of its student."""
    from amsnet_basicsr import train_folder
    from amsnet_basicsr.networks import load_options
    from amsnet_basicsr.recipes import write_png
    photo_dir = osp.join(folder, 'photos')
    os.makedirs(photo_dir, exist_ok=True)
    for name, noisy, _ in photos:
        write_png(osp.join(photo_dir, f'{name}.png'), noisy)
    run_dir = osp.join(folder, 'train_folder')
    args = train_folder.parse_args([photo_dir, '--out', run_dir, '--seed', str(seed), '--quiet'] +
                                   (['--resume'] if osp.isdir(run_dir) else []) + (['--quick'] if quick else []))
    train_folder.run(args, lambda message: log(f'  train-folder: {message}'))
    options = {label: load_options(osp.join(run_dir, name))
               for label, name in (('teacher', 'train_folder.yml'), ('student', 'distill_folder.yml'))}
    weights = {'teacher': options['student']['path']['pretrain_network_teacher'],
               'student': osp.join(run_dir, 'model.pth')}
    return {label: (options[label], torch.load(weights[label], map_location='cpu', weights_only=True)['params'])
            for label in options}


TRAINING_SETS = {  # --train-on: which noisy photos amsnet-train-folder trains on, and the rows' setting
    'test-photos': 'amsnet-train-folder on these noisy photos',
    'other-photos': 'amsnet-train-folder on the demo\'s training photos through this camera',
}


def evaluate_variant(demo, variant, *, block, limit, adapt_steps, train_dir, train_on=(), quick, log):
    """Rows (method, setting, PSNR, SSIM, cast, low-frequency error, seconds per block) of one variant."""
    from amsnet_basicsr import baselines
    from amsnet_basicsr.config import SchemeConfig
    from amsnet_basicsr.models.adaptation import adapt_network
    from amsnet_basicsr.recipes import RECIPES, evaluate, in_process_model, scores, to_uint8
    photos = variant_photos(variant, seed=demo['seed'])
    blocks = variant_blocks(variant, seed=demo['seed'], block=block, limit=limit, photos=photos)
    clean8 = [to_uint8(clean) for _, _, clean in blocks]
    rows = []

    def add(method, setting, outputs, seconds):
        metrics = np.mean([(*scores(out, ref), *errors(out, ref)) for out, ref in zip(outputs, clean8)], axis=0)
        rows.append(dict(method=method, setting=setting, psnr=metrics[0], ssim=metrics[1], cast=metrics[2],
                         low_frequency=metrics[3], mean_error_rgb=list(metrics[4:]), seconds_per_block=seconds))

    def add_model(method, setting, options, state_dict, r3, *, self_ensemble=False):
        options = {**options, 'amsnet': {**options['amsnet'], 'self_ensemble': self_ensemble}}
        model = in_process_model(options, is_train=False, r3_enabled=r3, state_dict=state_dict)
        start = time.perf_counter()
        results = evaluate(model, blocks)
        add(method, setting, [result['denoised'] for result in results], (time.perf_counter() - start) / len(blocks))

    add('noisy input', '', [to_uint8(noisy) for _, noisy, _ in blocks], 0.0)
    for name, factor in demo['filters'].items():
        filter_fn, _ = baselines.FILTERS[name]
        start = time.perf_counter()
        outputs = [to_uint8(filter_fn(noisy, factor)) for _, noisy, _ in blocks]
        add(name, f'{factor:g} x noise estimate, tuned on the demo\'s validation block', outputs,
            (time.perf_counter() - start) / len(blocks))
    trained = 'the demo\'s model (other photos, the tuning camera)'
    for method, label, r3 in (('AMSNet-B (MMDB)', 'teacher', False), ('AMSNet-B-E (MMDB + R3)', 'teacher', True),
                              ('AMSNet-D student (one pass)', 'student', None)):
        add_model(method, trained, demo['options'][label], demo['weights'][label], r3)
    add_model(ENSEMBLE_STUDENT, trained, demo['options']['student'], demo['weights']['student'], None,
              self_ensemble=True)
    if adapt_steps:
        options = demo['options']['teacher']
        seed = SchemeConfig.from_options(options).seed
        outputs, start = [], time.perf_counter()
        for block_item in blocks:
            net = adapt_network(block_item[1], options, checkpoint=demo['teacher_checkpoint'], param_key='params',
                                steps=adapt_steps, lr=ADAPT_LR, seed=seed, device=torch.device('cpu'))
            model = in_process_model(options, is_train=False, r3_enabled=True, state_dict=net.state_dict())
            outputs.append(evaluate(model, [block_item])[0]['denoised'])
        add('AMSNet-B-E + adaptation (per block)', f'the demo\'s model, amsnet-denoise --adapt {adapt_steps}', outputs,
            (time.perf_counter() - start) / len(blocks))
    for training_set in train_on:
        start = time.perf_counter()
        training_photos = photos if training_set == 'test-photos' else variant_photos(
            variant, seed=demo['seed'], names=RECIPES['quick' if quick else 'full']['train_images'])
        models = train_on_photos(training_photos, osp.join(train_dir, f'seed_{demo["seed"]}', slug(variant),
                                                           training_set), seed=demo['seed'], quick=quick, log=log)
        log(f'{variant}: amsnet-train-folder on {training_set} took {time.perf_counter() - start:.0f} s')
        setting = TRAINING_SETS[training_set]
        add_model('AMSNet-B-E (MMDB + R3)', setting, *models['teacher'], True)
        add_model('AMSNet-D student (one pass)', setting, *models['student'], None)
        add_model(ENSEMBLE_STUDENT, setting, *models['student'], None, self_ensemble=True)
    for row in rows:
        log(f'{variant[:40]:40s} {row["method"][:36]:36s} {row["setting"][:24]:24s} {row["psnr"]:6.2f} dB  '
            f'cast {row["cast"]:5.2f}  LF {row["low_frequency"]:5.2f}  {row["seconds_per_block"]:6.2f} s')
    return rows


def slug(variant):
    """A folder name for ``variant``: 'soft, bilinear (the demo...)' -> 'soft_bilinear'."""
    return re.sub(r'[^a-z0-9]+', '_', variant.split(' (')[0].lower()).strip('_')


def aggregate(runs):
    """Per variant, per (method, setting): mean and sample standard deviation over the runs (seeds)."""
    table = {}
    for variant in runs[0]:
        rows = []
        for index, first in enumerate(runs[0][variant]):
            values = {key: [run[variant][index][key] for run in runs]
                      for key in ('psnr', 'ssim', 'cast', 'low_frequency', 'seconds_per_block')}
            mean_error = np.mean([run[variant][index]['mean_error_rgb'] for run in runs], axis=0)
            rows.append(dict(method=first['method'], setting=first['setting'],
                             mean_error_rgb=[float(v) for v in mean_error],
                             **{key: float(np.mean(value)) for key, value in values.items()},
                             **{f'{key}_std': float(np.std(value, ddof=1)) if len(runs) > 1 else 0.0
                                for key, value in values.items()},
                             psnr_per_seed=values['psnr']))
        table[variant] = rows
    return table


def markdown(table, *, seeds, demo_folders, command):
    spread = len(seeds) > 1

    def value(row, key, digits=2):
        text = f'{row[key]:.{digits}f}'
        return text + (f' ± {row[key + "_std"]:.{digits}f}' if spread else '')

    lines = ['# Data-shift bench', '', f'Command: `{command}`; settings from the demo runs in '
             f'{", ".join(f"`{folder}`" for folder in demo_folders)} (seeds {", ".join(map(str, seeds))}).', '',
             'PSNR / SSIM to the clean block' + (' (mean ± standard deviation over seeds)' if spread else '') +
             '; cast: largest absolute per-channel mean error of a block, averaged over blocks; mean error: per '
             'channel (R, G, B) over all blocks; LF: RMS of the error blurred with a 4-px Gaussian; all in grey '
             'levels; s: seconds per block.', '']
    for variant, rows in table.items():
        lines += [f'## {variant}', '', '| method | setting | PSNR | SSIM | cast | mean error R, G, B | LF | s |',
                  '| --- | --- | --- | --- | --- | --- | --- | --- |']
        lines += [f'| {r["method"]} | {r["setting"]} | {value(r, "psnr")} | {value(r, "ssim", 4)} | {r["cast"]:.2f} | '
                  f'{", ".join(f"{v:+.2f}" for v in r["mean_error_rgb"])} | {r["low_frequency"]:.2f} | '
                  f'{r["seconds_per_block"]:.2f} |' for r in rows]
        lines.append('')
    return '\n'.join(lines)


def run(argv=None):
    parser = argparse.ArgumentParser(prog='data_shift.py', description=__doc__.split('\n\n')[0])
    parser.add_argument('--demo', required=True, nargs='+', help='output folder(s) of one-seed demo runs (the '
                        'settings); several folders (e.g. a --seeds run\'s seed_<s>) give mean ± spread over seeds')
    parser.add_argument('--out', required=True, help='folder for data_shift.md and data_shift.json')
    parser.add_argument('--block', type=int, default=256, help='test block side (default: the demo\'s 256)')
    parser.add_argument('--limit', type=int, default=3, help='blocks per test photo (default: the demo\'s 3)')
    parser.add_argument('--adapt-steps', type=int, default=ADAPT_STEPS, help='test-time adaptation steps per block '
                        '(default: %(default)s; 0 = no adaptation row)')
    parser.add_argument('--train-on', nargs='+', choices=list(TRAINING_SETS), default=[],
                        help='also run amsnet-train-folder\'s default recipe per variant on its noisy test photos '
                        'themselves and/or on the demo\'s training photos through its camera (about 9 CPU-minutes '
                        'each per variant and seed)')
    parser.add_argument('--variants', nargs='+', type=int, help='indices of VARIANTS to run (default: all)')
    parser.add_argument('--quick', action='store_true', help='amsnet-train-folder --quick (seconds; for tests)')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    demos = [load_demo(folder) for folder in args.demo]
    names = list(VARIANTS)
    chosen = [names[index] for index in args.variants] if args.variants else names
    train_dir = osp.join(args.out, 'train_folder_runs')
    log = partial(print, flush=True)
    runs = [{variant: evaluate_variant(demo, variant, block=args.block, limit=args.limit, adapt_steps=args.adapt_steps,
                                       train_dir=train_dir, train_on=args.train_on, quick=args.quick, log=log)
             for variant in chosen}
            for demo in demos]
    table = aggregate(runs)
    os.makedirs(args.out, exist_ok=True)
    command = 'python benchmarks/data_shift.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    seeds = [demo['seed'] for demo in demos]
    text = markdown(table, seeds=seeds, demo_folders=args.demo, command=command)
    with open(osp.join(args.out, 'data_shift.md'), 'w') as handle:
        handle.write(text + '\n')
    with open(osp.join(args.out, 'data_shift.json'), 'w') as handle:
        json.dump(dict(command=command, demo=args.demo, seeds=seeds, variants=table), handle, indent=1, default=float)
    print(text)
    return table


def main(argv=None):
    """Console entry: exit status 0, or 2 with one line naming the problem (:mod:`amsnet_basicsr.errors`)."""
    from amsnet_basicsr import plugin  # noqa: F401  (registers the architectures; the torchvision alias before basicsr)
    return run_command('data_shift.py', run, argv)


if __name__ == '__main__':
    sys.exit(main())
