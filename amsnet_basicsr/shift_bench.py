"""Data-shift bench: a demo run's settings, judged on photos through other camera pipelines.

    python -m amsnet_basicsr.demo --out results/amsnet_demo                       # the settings (tuning variant)
    python -m amsnet_basicsr.shift_bench --demo results/amsnet_demo --out results/shift_bench

Every setting comes from one variant, the demo's own (photos enlarged 2x, bilinear demosaic): the trained B model
and its distilled student, and OpenCV NLM's h and BM3D's sigma factor, both tuned on that variant's validation
block by the demo (``results.json``); test-time adaptation uses ``amsnet-denoise``'s validated ``--adapt 300``.
Nothing is tuned again. They are evaluated on the held-apart test photos (:data:`amsnet_basicsr.demo_data.TEST_IMAGES`,
the demo's seed) through every variant of :data:`VARIANTS` -- native sharpness, an edge-aware demosaic, JPEG
compression, an ISP sharpening step (which lengthens the noise correlation) -- on the demo's 256x256 blocks.

Columns per method: PSNR / SSIM (BasicSR, 8-bit RGB), the colour cast (the largest per-channel mean error, in grey
levels: a denoiser should have none) and the low-frequency error (RMS of the error after a sigma = 4 px Gaussian
blur, grey levels; the noisy input's is the reference), and seconds per block. The demo has no P stage, so there is
no P-E row.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import cv2
import numpy as np
import torch
import yaml

from .errors import SetupError, run_command

VARIANTS = {  # name: (enlarge, demosaic, JPEG quality of the noisy image or None, sharpening amount or 0)
    'soft, bilinear (the demo: tuning variant)': (2, 'bilinear', None, 0.0),
    'native sharpness, bilinear': (1, 'bilinear', None, 0.0),
    'soft, edge-aware demosaic': (2, 'opencv_ea', None, 0.0),
    'soft, JPEG quality 90': (2, 'bilinear', 90, 0.0),
    'soft, ISP sharpening': (2, 'bilinear', None, 0.6),
}
ADAPT_STEPS, ADAPT_LR = 300, 1e-3  # amsnet-denoise --adapt, chosen on the validation photo (docs/demo.md)


def sharpen(image, amount):
    """Unsharp masking (Gaussian sigma 1 px), as a phone ISP applies it after demosaicking."""
    return np.clip(image + amount * (image - cv2.GaussianBlur(image, (0, 0), 1.0)), 0, 1).astype(np.float32)


def jpeg(image, quality):
    """The 8-bit RGB image through a JPEG encode/decode at ``quality``, back to float RGB."""
    ok, data = cv2.imencode('.jpg', np.rint(image[..., ::-1] * 255).astype(np.uint8),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255


def variant_blocks(variant, *, seed, block, limit):
    """[(key, noisy, clean)] test blocks of the held-apart photos through the camera pipeline of ``variant``."""
    from . import camera_noise, demo_data
    enlarge, demosaic, quality, amount = VARIANTS[variant]
    blocks = []
    for name in demo_data.TEST_IMAGES:
        noisy, clean = camera_noise.camera_noise_pair(demo_data.photo(name, max_side=512, enlarge=enlarge),
                                                      demo_data.noise_rng(seed, name), demosaic=demosaic)
        if amount:
            noisy, clean = sharpen(noisy, amount), sharpen(clean, amount)
        if quality:
            noisy = jpeg(noisy, quality)
        size = min(block, *noisy.shape[:2])
        for top, left in demo_data.block_corners(*noisy.shape[:2], size=size, limit=limit):
            window = np.s_[top:top + size, left:left + size]
            blocks.append((f'{name}_{top:04d}_{left:04d}', noisy[window], clean[window]))
    return blocks


def errors(output, clean):
    """(colour cast, low-frequency error) of uint8 BGR ``output`` against uint8 BGR ``clean``, in grey levels."""
    error = output.astype(np.float64) - clean.astype(np.float64)
    cast = float(np.abs(error.reshape(-1, 3).mean(0)).max())
    low = cv2.GaussianBlur(error, (0, 0), 4.0)
    return cast, float(np.sqrt((low ** 2).mean()))


def load_demo(folder):
    """The demo run's options, weights and tuned filter parameters (:class:`SetupError` naming what is missing)."""
    needed = {'teacher options': 'train_demo.yml', 'teacher weights': 'experiments/AMSNet_demo/models/net_g_latest.pth',
              'student options': 'distill_demo.yml',
              'student weights': 'experiments/AMSNet_D_demo/models/net_g_latest.pth', 'results': 'results.json'}
    paths = {label: osp.join(folder, name) for label, name in needed.items()}
    for label, path in paths.items():
        if not osp.isfile(path):
            raise SetupError(f'--demo {folder}: no {label} ({path}); run python -m amsnet_basicsr.demo --out {folder}')
    with open(paths['results']) as handle:
        results = json.load(handle)
    if 'baseline_parameters' not in results:
        raise SetupError(f'{paths["results"]}: a one-seed demo run is needed (use the seed_<s> folder of --seeds runs)')
    weights = {label: torch.load(paths[f'{label} weights'], map_location='cpu', weights_only=True)['params']
               for label in ('teacher', 'student')}
    options = {label: yaml.safe_load(open(paths[f'{label} options'])) for label in ('teacher', 'student')}
    return dict(options=options, weights=weights, teacher_checkpoint=paths['teacher weights'],
                filters=results['baseline_parameters'], seed=results['seed'])


def evaluate_variant(demo, variant, *, block, limit, adapt_steps, log):
    """Rows (method, PSNR, SSIM, cast, low-frequency error, seconds per block) of one variant."""
    from . import baselines
    from .config import SchemeConfig
    from .demo import evaluate, in_process_model, scores, to_uint8
    from .denoise import adapted_network
    blocks = variant_blocks(variant, seed=demo['seed'], block=block, limit=limit)
    clean8 = [to_uint8(clean) for _, _, clean in blocks]
    rows = []

    def add(method, outputs, seconds):
        metrics = np.mean([(*scores(out, ref), *errors(out, ref)) for out, ref in zip(outputs, clean8)], axis=0)
        rows.append(dict(method=method, psnr=metrics[0], ssim=metrics[1], cast=metrics[2], low_frequency=metrics[3],
                         seconds_per_block=seconds))

    add('noisy input', [to_uint8(noisy) for _, noisy, _ in blocks], 0.0)
    for name, parameter in demo['filters'].items():
        filter_fn, _ = baselines.FILTERS[name]
        start = time.perf_counter()
        outputs = [to_uint8(filter_fn(noisy, parameter)) for _, noisy, _ in blocks]
        add(f'{name} ({parameter:g}, tuned on the demo\'s validation block)', outputs,
            (time.perf_counter() - start) / len(blocks))
    models = (('AMSNet-B (MMDB)', 'teacher', False), ('AMSNet-B-E (MMDB + R3)', 'teacher', True),
              ('AMSNet-D student (one pass)', 'student', None))
    for method, label, r3 in models:
        model = in_process_model(demo['options'][label], is_train=False, r3_enabled=r3,
                                 state_dict=demo['weights'][label])
        start = time.perf_counter()
        results = evaluate(model, blocks)
        add(method, [result['denoised'] for result in results], (time.perf_counter() - start) / len(blocks))
    if adapt_steps:
        options = demo['options']['teacher']
        settings = dict(config=SchemeConfig.from_options(options), device=torch.device('cpu'), model_channels=3,
                        adapt=dict(options=options, checkpoint=demo['teacher_checkpoint'], steps=adapt_steps,
                                   lr=ADAPT_LR, param_key='params'))
        outputs, start = [], time.perf_counter()
        for block_item in blocks:
            net = adapted_network(block_item[1], settings, lambda message: None)
            model = in_process_model(options, is_train=False, r3_enabled=True, state_dict=net.state_dict())
            outputs.append(evaluate(model, [block_item])[0]['denoised'])
        add(f'AMSNet-B-E + --adapt {adapt_steps} (per block)', outputs, (time.perf_counter() - start) / len(blocks))
    for row in rows:
        log(f'{variant:42s} {row["method"][:44]:44s} {row["psnr"]:6.2f} dB  cast {row["cast"]:5.2f}  '
            f'LF {row["low_frequency"]:5.2f}  {row["seconds_per_block"]:6.2f} s')
    return rows


def markdown(table, demo_folder, command):
    lines = ['# Data-shift bench', '', f'Command: `{command}`; settings from the demo run in `{demo_folder}`.', '',
             'PSNR / SSIM to the clean block; cast: largest per-channel mean error (grey levels); LF: RMS of the '
             'error blurred with a 4-px Gaussian (grey levels); s: seconds per block.', '']
    for variant, rows in table.items():
        lines += [f'## {variant}', '', '| method | PSNR | SSIM | cast | LF | s |', '| --- | --- | --- | --- | --- | --- |']
        lines += [f'| {r["method"]} | {r["psnr"]:.2f} | {r["ssim"]:.4f} | {r["cast"]:.2f} | {r["low_frequency"]:.2f} '
                  f'| {r["seconds_per_block"]:.2f} |' for r in rows]
        lines.append('')
    return '\n'.join(lines)


def run(argv=None):
    parser = argparse.ArgumentParser(prog='shift_bench', description=__doc__.split('\n\n')[0])
    parser.add_argument('--demo', required=True, help='output folder of a one-seed demo run (the settings)')
    parser.add_argument('--out', required=True, help='folder for shift_bench.md and shift_bench.json')
    parser.add_argument('--block', type=int, default=256, help='test block side (default: the demo\'s 256)')
    parser.add_argument('--limit', type=int, default=3, help='blocks per test photo (default: the demo\'s 3)')
    parser.add_argument('--adapt-steps', type=int, default=ADAPT_STEPS, help='test-time adaptation steps per block '
                        '(default: %(default)s; 0 = no adaptation row)')
    parser.add_argument('--variants', nargs='+', type=int, help='indices of VARIANTS to run (default: all)')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    demo = load_demo(args.demo)
    names = list(VARIANTS)
    chosen = [names[index] for index in args.variants] if args.variants else names
    table = {variant: evaluate_variant(demo, variant, block=args.block, limit=args.limit,
                                       adapt_steps=args.adapt_steps, log=print) for variant in chosen}
    os.makedirs(args.out, exist_ok=True)
    command = 'python -m amsnet_basicsr.shift_bench ' + ' '.join(sys.argv[1:] if argv is None else argv)
    text = markdown(table, args.demo, command)
    with open(osp.join(args.out, 'shift_bench.md'), 'w') as handle:
        handle.write(text + '\n')
    with open(osp.join(args.out, 'shift_bench.json'), 'w') as handle:
        json.dump(dict(command=command, demo=args.demo, seed=demo['seed'], variants=table), handle, indent=1,
                  default=float)
    print(text)
    return table


def main(argv=None):
    """Console entry: exit status 0, or 2 with one line naming the problem (:mod:`amsnet_basicsr.errors`)."""
    from . import plugin  # noqa: F401  (registers the architectures; applies the torchvision alias before basicsr)
    return run_command('shift_bench', run, argv)


if __name__ == '__main__':
    sys.exit(main())
