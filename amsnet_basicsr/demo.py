"""The embedded demo: self-supervised AMSNet training and testing on a CPU in a few minutes, no download.

``python -m amsnet_basicsr.demo`` (console script ``amsnet-demo``):

1. Takes scikit-image's bundled sample photos and gives them realistic, signal-dependent and spatially
   correlated sRGB camera noise (:mod:`amsnet_basicsr.camera_noise`, Brooks et al. 2019 unprocessing model).
   The photos are split three ways, by image:

   * training: ``TRAIN_IMAGES``; only their NOISY versions are cut into tiles and packed into a BasicSR LMDB
     (``basicsr.utils.lmdb_util.make_lmdb_from_imgs``). No clean pixel is ever written to the training set;
   * validation: ``VAL_IMAGE`` (noisy/clean block) -- the only image used to choose the demo's settings
     (architecture, strides, learning rate, schedule, R3) and the one BasicSR validates on during training;
   * test: ``TEST_IMAGES``, cut into noisy/clean blocks like SIDD's validation blocks and held apart: they
     never tuned anything and are only looked at once, after training.

2. Writes a BasicSR options file (``model_type: AMSNetModel``, ``NoisyImageDataset`` on the LMDB, a small
   denoiser) into the output folder and trains by running ``amsnet_basicsr/train.py -opt <yml>`` in a
   subprocess, with the output folder as the working directory (experiments/ land there).

3. Loads the trained ``net_g``, denoises the held-apart blocks with ``scheme.denoise`` (MMDB at the test
   stride, then R3), prints PSNR/SSIM (``basicsr.metrics``, crop_border 0: the paper's convention) of the noisy input, of the
   untrained network and of the trained one, and writes noisy | denoised | clean PNGs, ``results.md``,
   ``results.json`` and the training curve ``curve.csv`` (L_m and validation PSNR vs iteration).

Why the settings differ from the paper's: the authors' Restormer/DnCNN, 160-px crops and PD stride 5
end below their noisy input after a CPU's few minutes (and so did plain DnCNN / U-Net variants tried here). The
demo buys iterations and helps the denoiser: a small :class:`~amsnet_basicsr.archs.mask_aware_arch.MaskAwareDnCNN`
(it starts as the mean of the unmasked neighbours and learns a correction), 60-px crops, Adam with cosine decay,
photos enlarged 2x (``ENLARGE``) like full-resolution captures, and PD stride 2 in training, which the demo
noise allows: its correlation (bilinear demosaic) is ~0.6 at distance 1, ~0.15 at 2 and ~0 from 3 on, while
SIDD's longer-range correlation needs stride 5. The table also reports the untrained network (the plain
neighbour mean) so that the part of the gain that training brings is visible.
"""
import argparse
import json
import math
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time

import numpy as np

from . import camera_noise

TRAIN_IMAGES = ('rocket', 'motorcycle_left', 'immunohistochemistry', 'hubble_deep_field', 'retina')
VAL_IMAGE = 'coffee'
TEST_IMAGES = ('astronaut', 'chelsea')
MARKER = '.amsnet_demo'
# The sample photos are small, downsampled pictures with detail down to single pixels. A phone's full-resolution
# capture is soft at the pixel scale (lens, demosaicking), and that is what lets PD sub-images (every 2nd / 5th
# pixel) still look like the scene. The demo enlarges every photo 2x (bicubic) before the camera noise to mimic
# it; noisy and clean images of the same photo come from the same enlarged image.
ENLARGE = 2
EXPERIMENT = 'AMSNet_demo'

# Settings chosen on the validation image only (the research runs are summarised in the module docstring and
# in the written options file). ``quick`` is a tiny configuration for the test-suite (runs in seconds; it
# checks that the pipeline works, not that it denoises well).
CONFIGS = {
    'full': dict(train_tile=128, max_train_side=512, max_eval_side=512, crop=60, batch=8, iters=2000, lr=3e-3,
                 nc=16, nb=4, train_stride=2, test_stride=2, val_block=256, test_block=256,
                 r3_times=8, train_images=TRAIN_IMAGES, test_images=TEST_IMAGES, max_test_blocks=3),
    'quick': dict(train_tile=64, max_train_side=96, max_eval_side=96, crop=32, batch=4, iters=20, lr=3e-3, nc=8,
                  nb=3, train_stride=2, test_stride=2, val_block=48, test_block=64,
                  r3_times=2, train_images=TRAIN_IMAGES[:2], test_images=TEST_IMAGES[:1], max_test_blocks=2),
}


# ----------------------------------------------------------------------------------------------- data
def load_sample(name):
    """A bundled scikit-image sample photo as (H, W, 3) uint8 RGB (no download)."""
    import skimage.data
    if name == 'motorcycle_left':
        image = skimage.data.stereo_motorcycle()[0]
    else:
        image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def enlarge(image, factor):
    """Bicubic enlargement by ``factor`` (see ENLARGE)."""
    import cv2
    if factor == 1:
        return image
    height, width = image.shape[:2]
    return cv2.resize(image, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_CUBIC)


def _resize_max_side(image, max_side):
    import cv2
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _to_uint8(image):
    """Float RGB in [0, 1] -> uint8 (the paper's metric convention: clamp, scale by 255, round)."""
    return np.clip(np.round(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def _write_rgb(path, image_uint8):
    import cv2
    if not cv2.imwrite(path, np.ascontiguousarray(image_uint8[..., ::-1])):
        raise OSError(f'could not write {path}')


def _blocks(height, width, size, limit=None):
    """Top-left corners of non-overlapping size x size blocks, centred in the image; with ``limit``, that many
    of them spread evenly over the image."""
    rows, cols = max(1, height // size), max(1, width // size)
    top0, left0 = (height - rows * size) // 2, (width - cols * size) // 2
    corners = [(top0 + r * size, left0 + c * size) for r in range(rows) for c in range(cols)]
    if limit == 1:
        corners = [corners[len(corners) // 2]]
    elif limit and limit < len(corners):
        corners = [corners[i] for i in np.unique(np.linspace(0, len(corners) - 1, limit).round().astype(int))]
    return corners


def _noise_rng(seed, name):
    """An independent, reproducible noise stream per (seed, image)."""
    return np.random.default_rng([seed, sum(ord(ch) * 31 ** i for i, ch in enumerate(name)) % (2 ** 31)])


def build_data(out, config, seed, log=print):
    """Write the noisy training LMDB, the validation block and the held-apart test blocks under ``out/data``."""
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs
    data = osp.join(out, 'data')
    tiles_dir = osp.join(data, 'train_noisy_tiles')
    os.makedirs(tiles_dir)
    names, sizes = [], []
    for name in config['train_images']:
        image = enlarge(_resize_max_side(load_sample(name), config['max_train_side']), ENLARGE)
        noisy = _to_uint8(camera_noise.add_camera_noise(image, _noise_rng(seed, name)))  # noisy only
        tile = config['train_tile']
        for top, left in _blocks(*noisy.shape[:2], tile):
            key = f'{name}_{top:04d}_{left:04d}'  # no dots: basicsr parses keys with split('.')
            _write_rgb(osp.join(tiles_dir, key + '.png'), noisy[top:top + tile, left:left + tile])
            names.append(key)
            sizes.append(tile * tile * 3)
    lmdb_path = osp.join(data, 'train_noisy.lmdb')
    # map_size: raw size of every tile + headroom (BASICSR_NOTES: the default estimate can overflow).
    make_lmdb_from_imgs(tiles_dir, lmdb_path, [k + '.png' for k in names], names, map_size=sum(sizes) * 4 + 2 ** 24)
    log(f'training set: {len(names)} noisy {config["train_tile"]}x{config["train_tile"]} tiles of '
        f'{", ".join(config["train_images"])} -> {lmdb_path}')

    def write_pairs(split, image_names, block, limit):
        folders = {kind: osp.join(data, split, kind) for kind in ('noisy', 'clean')}
        for folder in folders.values():
            os.makedirs(folder)
        keys = []
        for name in image_names:
            image = enlarge(_resize_max_side(load_sample(name), config['max_eval_side']), ENLARGE)
            noisy, clean = camera_noise.camera_noise_pair(image, _noise_rng(seed, name))
            noisy, clean = _to_uint8(noisy), _to_uint8(clean)
            size = min(block, *noisy.shape[:2])
            for top, left in _blocks(*noisy.shape[:2], size, limit):
                key = f'{name}_{top:04d}_{left:04d}'
                _write_rgb(osp.join(folders['noisy'], key + '.png'), noisy[top:top + size, left:left + size])
                _write_rgb(osp.join(folders['clean'], key + '.png'), clean[top:top + size, left:left + size])
                keys.append(key)
        return folders, keys

    val_folders, val_keys = write_pairs('val', [VAL_IMAGE], config['val_block'], 1)
    test_folders, test_keys = write_pairs('test', config['test_images'], config['test_block'],
                                          config['max_test_blocks'])
    log(f'validation (tuning only): {len(val_keys)} block of {VAL_IMAGE}; held-apart test: {len(test_keys)} '
        f'blocks of {", ".join(config["test_images"])}')
    return dict(lmdb=lmdb_path, val=val_folders, test=test_folders, test_keys=test_keys)


# ----------------------------------------------------------------------------------------------- options
OPTIONS_TEMPLATE = """\
# AMSNet embedded demo (written by `python -m amsnet_basicsr.demo`). Variant B-E: mask-stage training (L_m, Eq. 2-4),
# MMDB at the test stride (Eq. 6-8) + R3 at test time. Settings chosen on the validation image ({val_image}) only.
name: {name}
model_type: AMSNetModel
num_gpu: 0            # the demo is a CPU demo; set `auto` to use a GPU
manual_seed: {seed}
scale: 1

amsnet:
  # PD strides. The paper uses 5 in training because SIDD's noise stays correlated over several pixels. The demo's
  # camera noise comes from a bilinear demosaic: neighbour correlation ~0.6 at distance 1, ~0.15 at distance 2 and
  # ~0 from distance 3 on (camera_noise.noise_correlation). Stride 2 already removes the strong distance-1
  # correlation, keeps 2.25x more pixels per sub-image than stride 3 and equals the test stride (no train/test
  # stride gap to learn across). On the validation image (earlier runs: photos at 1x, 6-layer 32-channel
  # MaskAwareDnCNN) MMDB reached 23.4 dB after 400 iterations at train stride 2 vs 22.6 dB after 350 at stride 3;
  # plain DnCNNs at stride 2 or 3 stayed below 21 dB after 400-800 iterations.
  train_stride: {train_stride}
  test_stride: {test_stride}
  num_branches: 2       # k = 2: 50% of the pixels masked per branch (paper's best ratio)
  masks_per_pixel: 1
  size_multiple: 1      # MaskAwareDnCNN takes any size
  chunk_size: ~
  seed: {seed}
  r3: {{enabled: true, times: {r3_times}, prob: 0.16}}   # R3 at s = 1: +0.45 dB over MMDB alone on the validation image

datasets:
  train:
    name: demo_noisy_tiles
    type: NoisyImageDataset
    dataroot_lq: {lmdb}   # NOISY tiles only
    io_backend: {{type: lmdb}}
    crop_size: {crop}     # small crops buy iterations on a CPU
    use_hflip: true
    use_rot: true
    num_worker_per_gpu: 0
    batch_size_per_gpu: {batch}
    dataset_enlarge_ratio: 100
    prefetch_mode: ~
  val:
    name: demo_val_{val_image}
    type: PairedImageDataset
    dataroot_gt: {val_clean}
    dataroot_lq: {val_noisy}
    filename_tmpl: '{{}}'
    io_backend: {{type: disk}}

network_g:
  # input -> [x, valid, mean of the unmasked 3x3 neighbours] -> nb conv layers (LeakyReLU) -> residual on the mean.
  # Plain DnCNN / U-Net need far more than a CPU's minutes to learn what a zeroed pixel means.
  type: MaskAwareDnCNN
  in_nc: 3
  out_nc: 3
  nc: {nc}
  nb: {nb}

path:
  pretrain_network_g: ~
  strict_load_g: true
  resume_state: ~

train:
  stage: mask
  ema_decay: 0
  optim_g: {{type: Adam, lr: !!float {lr}, betas: [0.9, 0.999], weight_decay: 0}}
  scheduler: {{type: CosineAnnealingRestartLR, periods: [{iters}], restart_weights: [1], eta_min: !!float 1e-5}}
  total_iter: {iters}
  warmup_iter: -1
  pixel_opt: {{type: MaskedL1Loss, loss_weight: 1.0}}

val:
  val_freq: {val_every}
  save_img: false
  metrics:
    psnr: {{type: calculate_psnr, crop_border: 0, test_y_channel: false}}

logger:
  print_freq: {print_freq}
  save_checkpoint_freq: 1000000000   # only the final net_g_latest.pth
  use_tb_logger: false
"""


def validation_frequency(iters):
    """Five validations (and the curve's points) per run, whatever its length."""
    return max(1, iters // 5)


def write_options(out, config, data, seed, iters):
    path = osp.join(out, 'train_demo.yml')
    text = OPTIONS_TEMPLATE.format(
        name=EXPERIMENT, seed=seed, val_image=VAL_IMAGE, train_stride=config['train_stride'],
        test_stride=config['test_stride'], r3_times=config['r3_times'], lmdb=osp.abspath(data['lmdb']),
        crop=config['crop'], batch=config['batch'], val_clean=osp.abspath(data['val']['clean']),
        val_noisy=osp.abspath(data['val']['noisy']), nc=config['nc'], nb=config['nb'], lr=config['lr'],
        iters=iters, val_every=validation_frequency(iters), print_freq=max(1, iters // 20))
    with open(path, 'w') as handle:
        handle.write(text)
    return path


# ----------------------------------------------------------------------------------------------- training
def build_net(config):
    from basicsr.utils.registry import ARCH_REGISTRY
    return ARCH_REGISTRY.get('MaskAwareDnCNN')(in_nc=3, out_nc=3, nc=config['nc'], nb=config['nb'])


def iterations_for_minutes(config, minutes, data, seed):
    """Measure this machine's training speed on the demo's batches and return the iterations that fit."""
    import cv2
    import torch
    from . import scheme
    tiles = sorted(os.listdir(osp.join(osp.dirname(data['lmdb']), 'train_noisy_tiles')))
    tile = cv2.imread(osp.join(osp.dirname(data['lmdb']), 'train_noisy_tiles', tiles[0]))[..., ::-1]
    crop = torch.from_numpy(tile[:config['crop'], :config['crop']].astype(np.float32) / 255).permute(2, 0, 1)
    batch = crop[None].repeat(config['batch'], 1, 1, 1).contiguous()
    net = build_net(config)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(seed)
    timings = []
    threads = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))  # as the training subprocess (train())
    for step in range(12):
        start = time.perf_counter()
        prediction, masked = scheme.masked_training_forward(net, batch, config['train_stride'], generator)
        loss = scheme.mask_loss(prediction, batch, masked)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= 2:
            timings.append(time.perf_counter() - start)
    torch.set_num_threads(threads)
    # BasicSR adds data loading and logging (~10%); its start-up and the validations are not in the budget.
    rate = 0.9 / float(np.median(timings))
    return max(10, int(minutes * 60 * rate)), rate


def train(out, options_path, log=print):
    """Run the package's train entry point as a subprocess in ``out``; its output is shown and kept."""
    train_script = osp.join(osp.dirname(osp.abspath(__file__)), 'train.py')
    repo_root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    env = dict(os.environ)
    env['PYTHONPATH'] = repo_root + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    # The demo's convolutions are tiny: one thread was 4x faster than two on the shared 2-core CPU it was tuned on.
    env.setdefault('OMP_NUM_THREADS', '1')
    command = [sys.executable, train_script, '-opt', osp.abspath(options_path)]
    log('training: ' + ' '.join(command))
    log_path = osp.join(out, 'train_stdout.log')
    with open(log_path, 'w') as handle:
        process = subprocess.Popen(command, cwd=out, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, bufsize=1)
        for line in process.stdout:
            handle.write(line)
            if re.search(r'\[epoch:|# psnr|error|Error|Traceback', line):
                log('  | ' + line.rstrip())
        code = process.wait()
    if code != 0:
        raise SystemExit(f'amsnet-demo: error: training failed (exit status {code}); see {log_path}')
    return log_path


def parse_curve(log_path, val_freq, total_iter):
    """(iteration, L_m, validation PSNR) rows from BasicSR's log: L_m at every print, PSNR at every validation."""
    losses, psnrs = {}, []
    with open(log_path) as handle:
        for line in handle:
            match = re.search(r'iter:\s*([\d,]+).*l_mask: ([-\d.e+]+)', line)
            if match:
                losses[int(match[1].replace(',', ''))] = float(match[2])
            match = re.search(r'# psnr: ([\d.]+)', line)
            if match:
                psnrs.append(float(match[1]))
    val_iters = [val_freq * (i + 1) for i in range(total_iter // val_freq)] + [total_iter]
    val_iters = val_iters[:len(psnrs)]
    rows = {it: [it, loss, None] for it, loss in losses.items()}
    for it, value in zip(val_iters, psnrs):
        rows.setdefault(it, [it, None, None])[2] = value  # a repeated final validation overwrites (same net)
    return [rows[it] for it in sorted(rows)]


# ----------------------------------------------------------------------------------------------- testing
def evaluate(net, folders, keys, config, seed, refine_times):
    """Denoise each noisy block with scheme.denoise; return the outputs and per-block PSNR/SSIM."""
    import cv2
    import torch
    from basicsr.metrics import calculate_psnr, calculate_ssim
    from . import scheme
    results = []
    net.eval()
    for key in keys:
        noisy = cv2.imread(osp.join(folders['noisy'], key + '.png'))[..., ::-1]
        clean = cv2.imread(osp.join(folders['clean'], key + '.png'))[..., ::-1]
        tensor = torch.from_numpy(noisy.astype(np.float32) / 255).permute(2, 0, 1)[None]
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            output = scheme.denoise(net, tensor, generator, stride=config['test_stride'], num_branches=2,
                                    refine_times=refine_times, refine_prob=0.16)
        denoised = _to_uint8(output[0].permute(1, 2, 0).numpy())
        results.append(dict(key=key, noisy=noisy, clean=clean, denoised=denoised,
                            psnr=calculate_psnr(denoised, clean, crop_border=0),
                            ssim=calculate_ssim(denoised, clean, crop_border=0)))
    return results


def _metrics_of_noisy(folders, keys):
    import cv2
    from basicsr.metrics import calculate_psnr, calculate_ssim
    rows = []
    for key in keys:
        noisy = cv2.imread(osp.join(folders['noisy'], key + '.png'))
        clean = cv2.imread(osp.join(folders['clean'], key + '.png'))
        rows.append((calculate_psnr(noisy, clean, crop_border=0), calculate_ssim(noisy, clean, crop_border=0)))
    return rows


def prepare_output(out, overwrite):
    """Create ``out``; an existing non-empty folder is an error unless ``--overwrite`` and it is a demo folder."""
    if osp.exists(out) and (not osp.isdir(out) or os.listdir(out)):
        if not overwrite:
            raise SystemExit(f'amsnet-demo: error: --out {out} exists and is not empty; choose another --out or pass '
                             '--overwrite to replace a previous demo output')
        if not osp.isfile(osp.join(out, MARKER)):
            raise SystemExit(f'amsnet-demo: error: --out {out} is not a previous demo output (no {MARKER} file); '
                             'refusing to delete it')
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    with open(osp.join(out, MARKER), 'w') as handle:
        handle.write('output folder of python -m amsnet_basicsr.demo\n')


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
    parser.add_argument('--seed', type=int, default=0, help='noise, crops, masks and initialisation seed')
    parser.add_argument('--quick', action='store_true', help='tiny configuration (seconds; checks the pipeline only)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing demo output folder')
    args = parser.parse_args(argv)
    if args.iters is not None and args.iters < 1:
        parser.error('--iters must be >= 1')
    if args.minutes is not None and not (args.minutes > 0 and math.isfinite(args.minutes)):
        parser.error('--minutes must be > 0')
    return args


def run_demo(argv=None):
    """The whole demo (module docstring); returns the summary that is also written to results.json."""
    args = parse_args(argv)
    start = time.time()
    config = CONFIGS['quick' if args.quick else 'full']
    out = osp.abspath(args.out)
    prepare_output(out, args.overwrite)

    import torch
    import amsnet_basicsr.plugin  # noqa: F401  (registers the denoisers; must precede basicsr imports)
    torch.manual_seed(args.seed)

    def log(message):
        print(f'[amsnet-demo {time.time() - start:6.1f}s] {message}', flush=True)

    data = build_data(out, config, args.seed, log)
    if args.minutes is not None:
        iters, rate = iterations_for_minutes(config, args.minutes, data, args.seed)
        log(f'measured {rate:.1f} it/s -> {iters} iterations for {args.minutes} min of training')
    else:
        iters = args.iters or config['iters']
    options_path = write_options(out, config, data, args.seed, iters)
    log(f'options: {options_path}')

    train_start = time.time()
    log_path = train(out, options_path, log)
    train_seconds = time.time() - train_start
    val_freq = validation_frequency(iters)
    curve = parse_curve(log_path, val_freq, iters)

    # ----- held-apart test: noisy input, untrained D_E, trained D_E (MMDB only = B, MMDB + R3 = B-E)
    weights = osp.join(out, 'experiments', EXPERIMENT, 'models', 'net_g_latest.pth')
    net = build_net(config)
    torch.manual_seed(args.seed)
    untrained = build_net(config)
    net.load_state_dict(torch.load(weights, map_location='cpu', weights_only=True)['params'])
    keys = data['test_keys']
    val_keys = [osp.splitext(name)[0] for name in sorted(os.listdir(data['val']['noisy']))]
    val_untrained = evaluate(untrained, data['val'], val_keys, config, args.seed, config['r3_times'])
    curve.insert(0, [0, None, float(np.mean([r['psnr'] for r in val_untrained]))])
    noisy_rows = _metrics_of_noisy(data['test'], keys)
    rows = [('noisy input', [p for p, _ in noisy_rows], [s for _, s in noisy_rows])]
    for label, model, refine in (('untrained D_E (unmasked-neighbour mean), MMDB', untrained, 0),
                                 ('untrained D_E (unmasked-neighbour mean), MMDB + R3', untrained, config['r3_times']),
                                 (f'trained ({iters} it), MMDB (B)', net, 0),
                                 (f'trained ({iters} it), MMDB + R3 (B-E)', net, config['r3_times'])):
        results = evaluate(model, data['test'], keys, config, args.seed, refine)
        rows.append((label, [r['psnr'] for r in results], [r['ssim'] for r in results]))
    final = results

    images = osp.join(out, 'images')
    os.makedirs(images)
    for result in final:
        gap = np.full((result['noisy'].shape[0], 4, 3), 255, np.uint8)
        _write_rgb(osp.join(images, f'{result["key"]}_noisy_denoised_clean.png'),
                   np.concatenate([result['noisy'], gap, result['denoised'], gap, result['clean']], axis=1))

    total_seconds = time.time() - start
    lines = [f'AMSNet demo: {len(keys)} held-apart test blocks of {", ".join(config["test_images"])} '
             f'(never used for tuning), {iters} training iterations, seed {args.seed}',
             '', '| method | PSNR (dB) | SSIM |', '| --- | --- | --- |']
    for label, psnrs, ssims in rows:
        lines.append(f'| {label} | {np.mean(psnrs):.2f} | {np.mean(ssims):.4f} |')
    lines += ['', f'training {train_seconds:.0f} s (BasicSR subprocess), total {total_seconds:.0f} s',
              '', f'validation curve ({VAL_IMAGE}, MMDB + R3; L_m = training loss):',
              '| iteration | L_m | val PSNR (dB) |', '| --- | --- | --- |']
    for it, loss, psnr in curve:
        lines.append(f'| {it} | {"" if loss is None else f"{loss:.4f}"} | {"" if psnr is None else f"{psnr:.2f}"} |')
    table = '\n'.join(lines)
    with open(osp.join(out, 'results.md'), 'w') as handle:
        handle.write(table + '\n')
    with open(osp.join(out, 'curve.csv'), 'w') as handle:
        handle.write('iteration,l_mask,val_psnr\n')
        for it, loss, psnr in curve:
            handle.write(f'{it},{"" if loss is None else loss},{"" if psnr is None else psnr}\n')
    summary = dict(iterations=iters, seed=args.seed, train_seconds=train_seconds, total_seconds=total_seconds,
                   test_blocks=keys, curve=curve,
                   rows=[dict(method=label, psnr=float(np.mean(p)), ssim=float(np.mean(s)),
                              psnr_per_block=[float(v) for v in p]) for label, p, s in rows])
    with open(osp.join(out, 'results.json'), 'w') as handle:
        json.dump(summary, handle, indent=2)
    print(table, flush=True)
    log(f'images: {images}; table: {osp.join(out, "results.md")}')
    return summary


def main(argv=None):
    """Console script ``amsnet-demo`` (returns None: exit status 0 on success)."""
    run_demo(argv)


if __name__ == '__main__':
    main()
