#!/usr/bin/env python
"""Reproduce AMSNet's ablation evidence on a fixed CPU budget per training run.

Groups (``--groups``, comma separated; all by default):

* ``identity`` -- paper Tab. 3 / supplement Sec. 1.8: {AP-BSN, AMSNet} x {D_A, D_AS}. D_A is AP-BSN's blind-spot
  network (``DBSNl``), D_AS the same with its dilated convs replaced by plain 3x3 convs. AP-BSN trains the network
  on PD sub-images with plain L1 to the noisy input; with D_AS it can learn the identity and should fall towards the
  noisy input's PSNR, while AMSNet (masks instead of a blind spot) keeps denoising with the same D_AS.
  Both schemes are evaluated without and with R^3 (AP-BSN: PD_2, then R^3 with the network; AMSNet: B and B-E).
* ``denoiser`` -- paper Tab. 4: AMSNet-B with several registered denoisers at matched small sizes.
* ``ratio`` -- paper Fig. 10: masks per branch 25 % (k = 4), 50 % (k = 2), 75 % (k = 4, m = 3, supplement Sec. 1.2).
* ``lambda`` -- paper Fig. 11: AMSNet-P fine-tuned from the same B with lambda in {0, 0.01, 0.1, 1}.
* ``variants`` -- paper Tab. 5: B, P (lambda = 0.01), B-E, P-E, with a checkerboard index (amsnet_basicsr.metrics).

Each training run gets the same budget: ``--budget`` CPU seconds of this process (``time.process_time``, with one
torch thread, so other load on the machine does not change the result much) or ``--iters`` iterations; fine-tunes
(P) get ``--finetune-budget`` / ``--finetune-iters``. Learning rates follow a cosine decay over the budget.
Base models shared by several groups are trained once. All seeds are fixed.

Data: the embedded demo data (scikit-image's bundled photos with synthetic sRGB camera noise from
``amsnet_basicsr.camera_noise``: signal-dependent, spatially correlated by demosaicking) or your own:
``--train-dir`` (noisy images only) and ``--val-noisy`` / ``--val-clean`` (pairs with the same file names).
Training only ever reads the noisy training images; clean images are read only to compute the reported metrics.

Writes to ``--out``: ``ablation.md`` (one table per group), ``ablation.json`` (all numbers), ``ablation.png``
(per group: PSNR bars and a crop of every output side by side) and the log.

Examples (the runs behind the README's ablation tables, ~16 CPU-minutes together)::

    python scripts/ablate.py --out results/ablation --budget 40 --finetune-budget 15
    python scripts/ablate.py --out results/ablation_identity --groups identity --crop 80 --batch 2 --budget 90

Tests use ``--tiny`` (tiny networks and data, a few iterations).
"""
import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import camera_noise, scheme
from amsnet_basicsr.metrics import checkerboard_index
from amsnet_basicsr.models.apbsn_model import apbsn_denoise, apbsn_loss
from basicsr.archs import build_network
from basicsr.metrics import calculate_ssim

GROUPS = ('identity', 'denoiser', 'ratio', 'lambda', 'variants')
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')

# Denoisers at small sizes (0.03-0.3 M parameters; the paper's full sizes are in the supplement); every run gets the same
# CPU budget, so cheaper networks get more iterations.
# ``multiple``: the PD sub-image size the network needs (amsnet.size_multiple).
DENOISERS = {
    'DnCNN': ({'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 32, 'nb': 6, 'act_mode': 'R'}, 1),
    'UNet': ({'type': 'UNet', 'in_nc': 3, 'out_nc': 3, 'n_feature': 16}, 32),
    'NAFNet': ({'type': 'NAFNet', 'img_channel': 3, 'width': 16, 'middle_blk_num': 2, 'enc_blk_nums': [1, 1],
                'dec_blk_nums': [1, 1]}, 4),
    'Restormer': ({'type': 'Restormer', 'inp_channels': 3, 'out_channels': 3, 'dim': 8, 'num_blocks': [1, 1, 1, 1],
                   'num_refinement_blocks': 1, 'heads': [1, 1, 2, 2], 'ffn_expansion_factor': 2.0, 'bias': False,
                   'LayerNorm_type': 'BiasFree'}, 8),
    'DeamNet': ({'type': 'DeamNet', 'in_nc': 3, 'out_nc': 3, 'channels': 16}, 16),
    'D_AS': ({'type': 'DBSNl', 'in_ch': 3, 'out_ch': 3, 'base_ch': 16, 'num_module': 3, 'unrestricted': True,
              'init': 'kaiming'}, 1),
}
BLIND_SPOT = {'D_A': False, 'D_AS': True}
DEFAULT_DENOISER = 'DnCNN'   # ratio / lambda / variants groups: the cheapest network, chosen before any run
LAMBDAS = (0.0, 0.01, 0.1, 1.0)
DEFAULT_LAMBDA = 0.01        # the method section's lambda; the lambda group shows the others

# Embedded demo data: scikit-image's bundled photographs (no download), noisy copies from the camera model.
DEMO_TRAIN = ('astronaut', 'coffee', 'rocket', 'stereo_motorcycle')
# validation crops: (photo, top, left) before upscaling
DEMO_VAL = (('chelsea', 60, 130), ('chelsea', 160, 250), ('immunohistochemistry', 200, 200))
DEMO_UPSCALE = 3


@dataclasses.dataclass(frozen=True)
class Config:
    budget: float = 40.0            # CPU seconds per base training run (ignored when iters is set)
    iters: int = None
    finetune_budget: float = 15.0
    finetune_iters: int = None
    crop: int = 40
    batch: int = 8
    lr: float = 1e-3
    finetune_lr: float = 1e-4
    finetune_crop: int = 80
    finetune_batch: int = 2
    train_stride: int = 5
    test_stride: int = 2
    r3_times: int = 8
    r3_prob: float = 0.16
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class Model:
    """A training run: scheme, network and mask configuration (and, for P, the lambda of the fine-tune)."""
    scheme: str                      # 'amsnet' | 'apbsn'
    denoiser: str                    # key of DENOISERS, or 'D_A' / 'D_AS' (identity group)
    num_branches: int = 2
    masks_per_pixel: int = 1
    finetune_lambda: float = None    # None: B (mask training only); else P fine-tuned from the matching B

    def base(self):
        return dataclasses.replace(self, finetune_lambda=None)


@dataclasses.dataclass(frozen=True)
class Row:
    group: str
    setting: str
    model: Model
    r3: bool = False


def identity_net(name, tiny):
    base_ch, num_module = (8, 2) if tiny else (16, 3)
    return {'type': 'DBSNl', 'in_ch': 3, 'out_ch': 3, 'base_ch': base_ch, 'num_module': num_module,
            'unrestricted': BLIND_SPOT[name], 'init': 'kaiming'}, 1


def network_spec(model, tiny):
    if model.denoiser in BLIND_SPOT:
        return identity_net(model.denoiser, tiny)
    spec, multiple = DENOISERS[model.denoiser]
    if tiny:
        spec = dict(spec)
        for key, value in (('nc', 8), ('nb', 3), ('n_feature', 8), ('width', 8), ('dim', 8), ('channels', 8),
                           ('base_ch', 8), ('num_module', 2)):
            if key in spec:
                spec[key] = value
    return dict(spec), multiple


def plan(groups, denoisers):
    """The rows of every requested group (each names the model it evaluates)."""
    default = Model('amsnet', DEFAULT_DENOISER)
    rows = []
    if 'identity' in groups:
        for net in ('D_A', 'D_AS'):
            rows.append(Row('identity', f'AP-BSN + {net}', Model('apbsn', net)))
            rows.append(Row('identity', f'AP-BSN + {net} + R3', Model('apbsn', net), r3=True))
            rows.append(Row('identity', f'AMSNet-B + {net}', Model('amsnet', net)))
            rows.append(Row('identity', f'AMSNet-B-E + {net}', Model('amsnet', net), r3=True))
    if 'denoiser' in groups:
        rows += [Row('denoiser', f'AMSNet-B + {name}', Model('amsnet', name)) for name in denoisers]
    if 'ratio' in groups:
        for k, m in ((4, 1), (2, 1), (4, 3)):
            rows.append(Row('ratio', f'{100 * m // k}% masked (k={k}, m={m})', Model('amsnet', DEFAULT_DENOISER, k, m)))
    if 'lambda' in groups:
        rows += [Row('lambda', f'AMSNet-P, lambda={lam:g}', dataclasses.replace(default, finetune_lambda=lam))
                 for lam in LAMBDAS]
    if 'variants' in groups:
        tuned = dataclasses.replace(default, finetune_lambda=DEFAULT_LAMBDA)
        rows += [Row('variants', 'AMSNet-B', default), Row('variants', f'AMSNet-P (lambda={DEFAULT_LAMBDA:g})', tuned),
                 Row('variants', 'AMSNet-B-E', default, r3=True),
                 Row('variants', f'AMSNet-P-E (lambda={DEFAULT_LAMBDA:g})', tuned, r3=True)]
    return rows


# ----------------------------------------------------------------------------------------------------------- data
def to_tensor(image):
    """(H, W, 3) float RGB in [0, 1] -> (1, 3, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


def read_rgb(path):
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f'cannot read image {path}')
    return image[..., ::-1].astype(np.float32) / 255.0


def image_files(folder):
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f'no images in {folder}')
    return files


def demo_photo(name, upscale=1):
    """A photo bundled with scikit-image as float RGB in [0, 1], bicubically enlarged ``upscale`` times."""
    import skimage.data
    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):     # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    image = image[..., :3].astype(np.float32) / 255.0
    if upscale > 1:
        image = cv2.resize(image, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
    return np.clip(image, 0.0, 1.0)


def demo_data(tiny, upscale=DEMO_UPSCALE):
    """Noisy training images and (noisy, clean) validation crops from the camera-noise model, fixed seeds.

    The photos are enlarged ``upscale`` times first: scikit-image's photos are 0.3 MP with detail at the pixel
    scale, while camera photos (SIDD: 12-16 MP) are smooth at the scale of the noise correlation and of the PD
    stride; enlarging gives the noise model that kind of image. Training and validation use different photographs;
    the clean versions of the training photos are never made.
    """
    train = []
    for index, name in enumerate(DEMO_TRAIN[:1] if tiny else DEMO_TRAIN):
        photo = demo_photo(name, 1 if tiny else upscale)
        if tiny:
            photo = photo[:96, :96]
        train.append(to_tensor(camera_noise.add_camera_noise(photo, 1000 + index)))
    val = []
    size = 48 if tiny else 128
    for index, (name, top, left) in enumerate(DEMO_VAL[:1] if tiny else DEMO_VAL):
        photo = demo_photo(name, 1 if tiny else upscale)
        top, left = (top * upscale, left * upscale) if not tiny else (top, left)
        crop = photo[top:top + size, left:left + size]
        noisy, clean = camera_noise.camera_noise_pair(crop, 2000 + index)
        val.append((to_tensor(noisy), to_tensor(clean), f'{name}_{top}_{left}'))
    return train, val


def folder_data(train_dir, val_noisy, val_clean):
    train = [to_tensor(read_rgb(path)) for path in image_files(train_dir)]
    val = []
    for path in image_files(val_noisy):
        clean_path = Path(val_clean) / path.name
        if not clean_path.is_file():
            raise FileNotFoundError(f'--val-clean has no {path.name} to pair with {path}')
        val.append((to_tensor(read_rgb(path)), to_tensor(read_rgb(clean_path)), path.stem))
    return train, val


def sample_batch(images, crop, batch, rng):
    """Random crops (reflect-padded when an image is smaller than ``crop``) with random flips / 90-degree turns."""
    crops = []
    for _ in range(batch):
        image = images[rng.integers(len(images))]
        height, width = image.shape[-2:]
        if height < crop or width < crop:
            image = scheme.pad_to_multiple(image, crop)
            height, width = image.shape[-2:]
        top, left = rng.integers(height - crop + 1), rng.integers(width - crop + 1)
        patch = image[..., top:top + crop, left:left + crop]
        if rng.integers(2):
            patch = patch.flip(-1)
        patch = torch.rot90(patch, int(rng.integers(4)), dims=(-2, -1))
        crops.append(patch)
    return torch.cat(crops)


# ------------------------------------------------------------------------------------------------------- training
def matched_crop(crop, batch, unit):
    """A crop that is a multiple of ``unit`` (train stride x the network's size multiple, so that PD sub-images need
    no padding) and at least ``crop``; the batch shrinks so the pixels per step stay about the same."""
    new_crop = -(-crop // unit) * unit
    return new_crop, max(1, round(batch * crop * crop / (new_crop * new_crop)))


def train(net, images, model, multiple, config, finetune=False):
    """Train ``net`` in place for the configured budget; returns (iterations, CPU seconds, wall seconds, last loss).

    B: scheme.masked_training_forward + L_m (Eq. 2-4). P: scheme.mmdb at the training stride + L_t (Eq. 9-10).
    AP-BSN: PD, the network, PD^-1, L1 to the noisy input. Only noisy images are read.
    """
    seed = config.seed + (7919 if finetune else 0)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    lr0 = config.finetune_lr if finetune else config.lr
    budget = config.finetune_budget if finetune else config.budget
    iters = config.finetune_iters if finetune else config.iters
    crop, batch = (config.finetune_crop, config.finetune_batch) if finetune else (config.crop, config.batch)
    crop, batch = matched_crop(crop, batch, config.train_stride * multiple)
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr0, betas=(0.9, 0.999), weight_decay=0)
    net.train()
    cpu_start, wall_start, done, loss = time.process_time(), time.time(), 0, float('nan')
    while True:
        progress = done / iters if iters else (time.process_time() - cpu_start) / budget
        if progress >= 1:
            break
        for group in optimiser.param_groups:
            group['lr'] = lr0 * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))
        noisy = sample_batch(images, crop, batch, rng)
        if finetune:
            groups = scheme.sample_mask_groups(noisy.shape[0], *noisy.shape[-2:], model.num_branches, generator)
            denoised = scheme.mmdb(net, noisy, config.train_stride, groups, model.num_branches,
                                   model.masks_per_pixel, multiple)
            value = scheme.finetune_loss(denoised, noisy, model.finetune_lambda)
        elif model.scheme == 'apbsn':
            value = apbsn_loss(net, noisy, config.train_stride, multiple)
        else:
            prediction, masked = scheme.masked_training_forward(net, noisy, config.train_stride, generator,
                                                                model.num_branches, model.masks_per_pixel, multiple)
            value = scheme.mask_loss(prediction, noisy, masked)
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        loss = value.item()
        done += 1
    return done, time.process_time() - cpu_start, time.time() - wall_start, loss


# ----------------------------------------------------------------------------------------------------- evaluation
def quantise(image):
    """The paper's metric convention: clamp to [0, 1], scale to 255, round."""
    return (image.clamp(0, 1) * 255).round()


def psnr(image, reference):
    mse = (quantise(image) - quantise(reference)).pow(2).mean().item()
    return float('inf') if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def ssim(image, reference):
    def to_uint8(x):
        return quantise(x)[0].permute(1, 2, 0).numpy().astype(np.uint8)
    return calculate_ssim(to_uint8(image), to_uint8(reference), crop_border=0, test_y_channel=False)


def infer(net, model, noisy, multiple, config, r3):
    generator = torch.Generator().manual_seed(config.seed)
    times = config.r3_times if r3 else 0
    with torch.no_grad():
        if model.scheme == 'apbsn':
            return apbsn_denoise(net, noisy, generator, config.test_stride, multiple, refine_times=times,
                                 refine_prob=config.r3_prob)
        return scheme.denoise(net, noisy, generator, config.test_stride, model.num_branches, model.masks_per_pixel,
                              multiple, refine_times=times, refine_prob=config.r3_prob)


def evaluate(net, model, val, multiple, config, r3):
    """Mean PSNR / SSIM to the clean images, PSNR to the noisy input (identity indicator), checkerboard index."""
    net.eval()
    outputs, scores = [], []
    start = time.process_time()
    for noisy, clean, _ in val:
        output = infer(net, model, noisy, multiple, config, r3)
        outputs.append(output)
        scores.append((psnr(output, clean), ssim(output, clean), psnr(output, noisy),
                       checkerboard_index(output, clean, config.test_stride)))
    mean = np.mean(scores, axis=0)
    return outputs, {'psnr': mean[0], 'ssim': mean[1], 'psnr_to_noisy': mean[2], 'checkerboard': mean[3],
                     'eval_cpu_s': time.process_time() - start}


# ------------------------------------------------------------------------------------------------------- reporting
def markdown(results, baseline, config, command):
    lines = ['# AMSNet ablation (scripts/ablate.py)', '', f'Command: `{command}`', '',
             f'Budget per training run: ' + (f'{config.iters} iterations' if config.iters else
                                             f'{config.budget:g} CPU s') +
             ' (base), ' + (f'{config.finetune_iters} iterations' if config.finetune_iters else
                            f'{config.finetune_budget:g} CPU s') + ' (fine-tune P, from the base B). '
             f'Crops {config.crop}px x {config.batch} (fine-tune {config.finetune_crop}px x {config.finetune_batch}), '
             f'AdamW lr {config.lr:g} (fine-tune {config.finetune_lr:g}; cosine), PD stride '
             f'{config.train_stride} (train) / {config.test_stride} (test), R3 T={config.r3_times} p={config.r3_prob}.', '',
             f'Noisy input: PSNR {baseline["psnr"]:.2f} dB, SSIM {baseline["ssim"]:.4f}, checkerboard '
             f'{baseline["checkerboard"]:.2f} (mean over {baseline["images"]} validation images).', '',
             'PSNR/SSIM: to the clean image (8-bit, RGB). "to noisy": PSNR of the output to the noisy input (high = '
             'close to the identity). CB: checkerboard index at the test stride, in grey levels (lower is smoother; '
             'amsnet_basicsr/metrics.py). Final loss: the training loss of the last step (L_m for AMSNet-B, L1 to '
             'the noisy input for AP-BSN, L_t for P; a loss far below the others\' means the network copies noise). '
             'Iterations, CPU and wall seconds are for training the row\'s model '
             '(a base model shared by several rows is trained once; P rows add their fine-tune); eval: inference CPU s.',
             '']
    for group in GROUPS:
        rows = [r for r in results if r['group'] == group]
        if not rows:
            continue
        lines += [f'## {group}', '', '| setting | PSNR | SSIM | to noisy | CB | final loss | params | iters | '
                  'train CPU s | train wall s | eval s |', '|---|---|---|---|---|---|---|---|---|---|---|']
        for r in rows:
            lines.append(f'| {r["setting"]} | {r["psnr"]:.2f} | {r["ssim"]:.4f} | {r["psnr_to_noisy"]:.2f} | '
                         f'{r["checkerboard"]:.2f} | {r["loss"]:.4f} | {r["params"] / 1e3:.0f}K | {r["iters"]} | '
                         f'{r["train_cpu_s"]:.0f} | {r["train_wall_s"]:.0f} | {r["eval_cpu_s"]:.1f} |')
        lines.append('')
    return '\n'.join(lines)


def label(canvas, text, origin, scale=0.4, colour=(0, 0, 0)):
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def figure(results, outputs, val, baseline, path, crop=64):
    """Per group: one column per setting (after the noisy input and the clean image), each with a bar of its mean
    PSNR (grey: the noisy input) above the same crop of its output on the first validation image."""
    noisy, clean, _ = val[0]
    height, width = noisy.shape[-2:]
    size = min(crop, height, width)
    top, left = (height - size) // 2, (width - size) // 2
    scale = max(1, 128 // size)
    cell_width, bar_height = max(size * scale, 150) + 6, 120

    def tile(image, caption):
        patch = quantise(image[..., top:top + size, left:left + size])[0].permute(1, 2, 0).numpy().astype(np.uint8)
        patch = cv2.resize(patch[..., ::-1], None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        cell = np.full((patch.shape[0] + 32, cell_width, 3), 255, np.uint8)
        cell[:patch.shape[0], 3:3 + patch.shape[1]] = patch
        for line_index, text in enumerate(caption.split('\n')):
            label(cell, text[:27], (3, patch.shape[0] + 13 + 13 * line_index), 0.36)
        return cell

    blocks = []
    for group in GROUPS:
        rows = [(r, outputs[i]) for i, r in enumerate(results) if r['group'] == group]
        if not rows:
            continue
        columns = [('noisy input', baseline['psnr'], baseline['psnr_first'], noisy, (150, 150, 150)),
                   ('clean', None, None, clean, None)]
        columns += [(r['setting'], r['psnr'], r['psnr_first'], out[0], (200, 120, 40)) for r, out in rows]
        values = [c[1] for c in columns if c[1] is not None]
        low, high = min(values) - 1.0, max(values) + 0.3
        header = np.full((22, cell_width * len(columns), 3), 255, np.uint8)
        label(header, f'{group}: bars = mean PSNR (dB) over the validation images; crops = first image', (4, 15), 0.45)
        cells = []
        for name, mean_psnr, first_psnr, image, colour in columns:
            bar = np.full((bar_height, cell_width, 3), 255, np.uint8)
            if mean_psnr is not None:
                y = int(16 + (bar_height - 20) * (1 - (mean_psnr - low) / (high - low)))
                cv2.rectangle(bar, (12, y), (cell_width - 12, bar_height - 1), colour, -1)
                label(bar, f'{mean_psnr:.2f}', (14, y - 3), 0.42)
            caption = name if first_psnr is None else f'{name}\n{first_psnr:.2f} dB'
            cells.append(np.concatenate([bar, tile(image, caption)], axis=0))
        blocks.append(np.concatenate([header, np.concatenate(cells, axis=1),
                                      np.full((12, cell_width * len(columns), 3), 255, np.uint8)], axis=0))
    width = max(block.shape[1] for block in blocks)
    blocks = [np.pad(b, ((0, 0), (0, width - b.shape[1]), (0, 0)), constant_values=255) for b in blocks]
    cv2.imwrite(str(path), np.concatenate(blocks, axis=0))


# ------------------------------------------------------------------------------------------------------------ main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='output folder (created)')
    parser.add_argument('--groups', default=','.join(GROUPS), help=f'comma-separated subset of {",".join(GROUPS)}')
    parser.add_argument('--denoisers', default=','.join(DENOISERS),
                        help=f'denoiser group members, subset of {",".join(DENOISERS)}')
    parser.add_argument('--budget', type=float, default=40.0, help='CPU seconds per base training run')
    parser.add_argument('--iters', type=int, default=None, help='iterations per base run (overrides --budget)')
    parser.add_argument('--finetune-budget', type=float, default=15.0, help='CPU seconds per fine-tune (P)')
    parser.add_argument('--finetune-iters', type=int, default=None, help='iterations per fine-tune (overrides)')
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--finetune-lr', type=float, default=1e-4)
    parser.add_argument('--crop', type=int, default=40, help='training crop (raised per network to a multiple '
                        'of train stride x its size multiple, with the batch reduced to keep the pixels per step)')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--train-stride', type=int, default=5)
    parser.add_argument('--test-stride', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=1, help='torch threads (1: CPU-time budgets are comparable)')
    parser.add_argument('--train-dir', help='folder of noisy training images (default: embedded demo data)')
    parser.add_argument('--val-noisy', help='folder of noisy validation images')
    parser.add_argument('--val-clean', help='folder of clean validation images, same file names')
    parser.add_argument('--tiny', action='store_true', help='tiny networks, data and budgets (seconds; for tests)')
    args = parser.parse_args(argv)
    groups = [g for g in args.groups.split(',') if g]
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        parser.error(f'--groups: unknown {unknown}; choose from {GROUPS}')
    denoisers = [d for d in args.denoisers.split(',') if d]
    if sorted(set(denoisers) - set(DENOISERS)):
        parser.error(f'--denoisers: unknown {sorted(set(denoisers) - set(DENOISERS))}; choose from {list(DENOISERS)}')
    if bool(args.val_noisy) != bool(args.val_clean) or (args.train_dir and not args.val_noisy):
        parser.error('give --train-dir, --val-noisy and --val-clean together (or none: embedded demo data)')
    return args, groups, denoisers


def main(argv=None):
    args, groups, denoisers = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = Config(budget=args.budget, iters=args.iters, finetune_budget=args.finetune_budget,
                    finetune_iters=args.finetune_iters, crop=args.crop, batch=args.batch, lr=args.lr,
                    finetune_lr=args.finetune_lr, train_stride=args.train_stride, test_stride=args.test_stride,
                    seed=args.seed)
    if args.tiny:
        config = dataclasses.replace(config, iters=args.iters or 3, finetune_iters=args.finetune_iters or 2, crop=40,
                                     batch=2, finetune_crop=40, finetune_batch=1, r3_times=2)
    train_images, val = (folder_data(args.train_dir, args.val_noisy, args.val_clean) if args.train_dir
                         else demo_data(args.tiny))
    log = open(out / 'ablation.log', 'w')

    def say(text):
        print(text, flush=True)
        log.write(text + '\n')
        log.flush()

    command = 'python scripts/ablate.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    noisy_scores = [(psnr(n, c), ssim(n, c), checkerboard_index(n, c, config.test_stride)) for n, c, _ in val]
    baseline = dict(zip(('psnr', 'ssim', 'checkerboard'), np.mean(noisy_scores, axis=0)), images=len(val),
                    psnr_first=noisy_scores[0][0])
    say(f'noisy input: PSNR {baseline["psnr"]:.2f} dB over {len(val)} validation images; {len(train_images)} '
        f'training images; config {config}')

    trained = {}

    def get_model(model):
        """Train (once) and return (net, multiple, record) for ``model``; P fine-tunes a copy of its B."""
        if model in trained:
            return trained[model]
        spec, multiple = network_spec(model, args.tiny)
        if model.finetune_lambda is None:
            torch.manual_seed(config.seed)
            net = build_network(dict(spec))
            iters, cpu, wall, loss = train(net, train_images, model, multiple, config)
            record = {'iters': iters, 'train_cpu_s': cpu, 'train_wall_s': wall, 'loss': loss}
        else:
            base_net, _, base_record = get_model(model.base())
            net = build_network(dict(spec))
            net.load_state_dict(base_net.state_dict())
            iters, cpu, wall, loss = train(net, train_images, model, multiple, config, finetune=True)
            record = {'iters': f'{base_record["iters"]}+{iters}', 'train_cpu_s': base_record['train_cpu_s'] + cpu,
                      'train_wall_s': base_record['train_wall_s'] + wall, 'loss': loss}
        record['params'] = sum(p.numel() for p in net.parameters())
        say(f'trained {model}: {record}')
        trained[model] = (net, multiple, record)
        return trained[model]

    results, outputs = [], []
    for row in plan(groups, denoisers):
        net, multiple, record = get_model(row.model)
        images, scores = evaluate(net, row.model, val, multiple, config, row.r3)
        psnr_first = psnr(images[0], val[0][1])
        result = {'group': row.group, 'setting': row.setting, 'model': dataclasses.asdict(row.model), 'r3': row.r3,
                  **record, **scores, 'psnr_first': psnr_first}
        say(f'{row.group:9s} {row.setting:36s} PSNR {scores["psnr"]:.2f}  SSIM {scores["ssim"]:.4f}  '
            f'to-noisy {scores["psnr_to_noisy"]:.2f}  CB {scores["checkerboard"]:.2f}  iters {record["iters"]}')
        results.append(result)
        outputs.append(images)

    (out / 'ablation.md').write_text(markdown(results, baseline, config, command) + '\n')
    (out / 'ablation.json').write_text(json.dumps({'command': command, 'config': dataclasses.asdict(config),
                                                   'noisy': baseline, 'rows': results}, indent=1, default=float))
    figure(results, outputs, val, baseline, out / 'ablation.png')
    say(f'wrote {out / "ablation.md"}, {out / "ablation.json"}, {out / "ablation.png"}')
    log.close()
    return results


if __name__ == '__main__':
    main()
