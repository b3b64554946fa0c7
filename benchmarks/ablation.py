#!/usr/bin/env python
"""Reproduce AMSNet's ablation evidence on a fixed CPU budget per training run (``python benchmarks/ablation.py``).

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

Every run is BasicSR's registered model (``AMSNetModel`` stage ``mask`` = B with L_m, Eq. 2-4; stage ``finetune``
= P with L_t, Eq. 9-10; ``APBSNModel``, registered with ``DBSNl`` by ``apbsn.py``) built with ``build_model`` and
trained by its own ``optimize_parameters`` on random noisy crops; its learning rate follows BasicSR's
``CosineAnnealingRestartLR`` over the run. Inference of an AMSNet run is the product's ``AMSNetDenoiser`` (what
``amsnet-denoise`` and the model's ``test()`` run: MMDB at the test stride, Eq. 6-8, with R^3 for the -E rows,
Sec. 3.3); AP-BSN's is its model's own ``test()``. Quantisation is ``basicsr.utils.tensor2img`` and the numbers are
``basicsr.metrics`` (crop_border 0) and ``calculate_checkerboard``.

Each training run gets the same budget: ``--iters`` iterations, or ``--budget`` CPU seconds of this process (with one
torch thread, so other load on the machine does not change the result much), turned into iterations by timing a
few ``optimize_parameters`` calls of a throwaway copy of the model; fine-tunes (P) get ``--finetune-budget`` /
``--finetune-iters``. Base models shared by several groups are trained once. All seeds are fixed.

Data: the embedded demo data (:mod:`amsnet_basicsr.demo_data`, the demo's split: the training photos, noisy only,
and blocks of the validation photo) or your own: ``--train-dir`` (noisy images only) and ``--val-noisy`` /
``--val-clean`` (pairs with the same file names). Training only ever reads the noisy training images; clean images
are read only to compute the reported metrics.

Beside every table: the noisy input and the classical filters a user would pick instead (OpenCV NLM, BM3D), each
validation image's filter parameter chosen on the other validation images (:func:`classical_baselines`).

Writes to ``--out``: ``ablation.md`` (one table per group), ``ablation.json`` (all numbers), ``ablation.png``
(per group: PSNR bars and a crop of every output side by side) and the log.

Examples (~16 CPU-minutes together)::

    python benchmarks/ablation.py --out results/ablation --budget 40 --finetune-budget 15
    python benchmarks/ablation.py --out results/ablation_identity --groups identity --crop 80 --batch 2 --budget 90

Tests use ``--tiny`` (tiny networks and data, a few iterations). Measured tables: ``benchmarks/results/ablation.md``.
"""
import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import apbsn  # noqa: F401  (registers DBSNl and APBSNModel into BasicSR: the AP-BSN rows build them by name)
import cv2
import numpy as np
import torch
from common import denoiser_from_state, evaluate, score_blocks, steps_per_second, train_in_process

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR; must precede the basicsr imports)
from amsnet_basicsr import baselines, demo_data, scheme
from amsnet_basicsr.errors import DataError, run_command
from amsnet_basicsr.image_io import read_rgb
from amsnet_basicsr.metrics import calculate_checkerboard
from amsnet_basicsr.recipes import cosine_schedule, in_process_model, scores, to_tensor, to_uint8, train_section

from basicsr.metrics import calculate_psnr
from basicsr.utils import imwrite

GROUPS = ('identity', 'denoiser', 'ratio', 'lambda', 'variants')
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')

# Denoisers at small sizes (0.03-0.3 M parameters; the paper's full sizes are in the supplement); every run gets
# the same CPU budget, so cheaper networks get more iterations.
# ``multiple``: the PD sub-image size the network needs (amsnet.size_multiple).
DENOISERS = {
    'DnCNN': ({'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 32, 'nb': 6, 'act_mode': 'R'}, 1),
    'UNet': ({'type': 'UNet', 'in_nc': 3, 'out_nc': 3, 'n_feature': 16}, 32),
    'NAFNet': ({'type': 'NAFNetBase', 'img_channel': 3, 'width': 16, 'middle_blk_num': 2, 'enc_blk_nums': [1, 1],
                'dec_blk_nums': [1, 1]}, 4),
    'Restormer': ({'type': 'Restormer', 'inp_channels': 3, 'out_channels': 3, 'dim': 8, 'num_blocks': [1, 1, 1, 1],
                   'num_refinement_blocks': 1, 'heads': [1, 1, 2, 2], 'ffn_expansion_factor': 2.0, 'bias': False,
                   'LayerNorm_type': 'BiasFree'}, 8),
    'DeamNet': ({'type': 'DeamNet', 'in_nc': 3, 'out_nc': 3, 'channels': 16}, 16),
    'D_AS': ({'type': 'DBSNl', 'in_ch': 3, 'out_ch': 3, 'base_ch': 16, 'num_module': 3, 'unrestricted': True,
              'init': 'kaiming'}, 1),
}
UNRESTRICTED = {'D_A': False, 'D_AS': True}
DEFAULT_DENOISER = 'DnCNN'   # ratio / lambda / variants groups: the cheapest network, chosen before any run
LAMBDAS = (0.0, 0.01, 0.1, 1.0)
DEFAULT_LAMBDA = 0.01        # the method section's lambda; the lambda group shows the others

# How much of the embedded demo data the ablation uses: photos reduced to max_side before the demo's enlargement,
# ``val_blocks`` validation blocks of ``val_block`` pixels.
DEMO_SIZES = {'full': dict(max_side=512, val_block=128, val_blocks=3, train_images=demo_data.TRAIN_IMAGES),
              'tiny': dict(max_side=48, val_block=48, val_blocks=1, train_images=demo_data.TRAIN_IMAGES[:1])}


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
            'unrestricted': UNRESTRICTED[name], 'init': 'kaiming'}, 1


def network_spec(model, tiny):
    if model.denoiser in UNRESTRICTED:
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
def image_files(folder):
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f'no images in {folder}')
    return files


def demo_ablation_data(tiny, seed):
    """The embedded demo data (:mod:`amsnet_basicsr.demo_data`): [(name, noisy)] training photos and
    [(key, noisy, clean)] validation blocks, sized by ``DEMO_SIZES``."""
    sizes = DEMO_SIZES['tiny' if tiny else 'full']
    train = demo_data.training_images(seed=seed, max_side=sizes['max_side'], names=sizes['train_images'])
    val = demo_data.validation_blocks(seed=seed, max_side=sizes['max_side'], block=sizes['val_block'],
                                      limit=sizes['val_blocks'])
    return train, val


def folder_data(train_dir, val_noisy, val_clean):
    """Your own data, in the layout of :func:`demo_ablation_data`."""
    train = [(path.stem, read_rgb(path)) for path in image_files(train_dir)]
    val = []
    for path in image_files(val_noisy):
        clean_path = Path(val_clean) / path.name
        if not clean_path.is_file():
            raise DataError(f'--val-clean has no {path.name} to pair with {path}')
        val.append((path.stem, read_rgb(path), read_rgb(clean_path)))
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


def model_options(model, network, config, *, multiple, iters, finetune=False):
    """BasicSR options of the run: B (``AMSNetModel``, stage ``mask``, L_m, Eq. 4), P (stage ``finetune``, L_t,
    Eq. 9-10, with lambda = ``model.finetune_lambda``) or AP-BSN (``APBSNModel``, L1 to the noisy input); AdamW with
    BasicSR's cosine decay over ``iters`` to 2 % of the initial rate; R^3 off (switched on for the -E rows at test
    time). The ablation's own recipe (in-process runs on random crops: no datasets, validation or logger), with the
    ``train`` section of :mod:`amsnet_basicsr.recipes`."""
    lr = config.finetune_lr if finetune else config.lr
    if model.scheme == 'apbsn':
        model_type, stage, loss = 'APBSNModel', 'apbsn', {'type': 'L1Loss'}
    elif finetune:
        model_type, stage = 'AMSNetModel', 'finetune'
        loss = {'type': 'FinetuneLoss', 'smoothness_weight': model.finetune_lambda}
    else:
        model_type, stage, loss = 'AMSNetModel', 'mask', {'type': 'MaskedL1Loss'}
    optimizer = {'type': 'AdamW', 'lr': lr, 'betas': [0.9, 0.999], 'weight_decay': 0}
    return {'name': 'ablation', 'model_type': model_type, 'num_gpu': 0, 'manual_seed': config.seed, 'scale': 1,
            'amsnet': {'train_stride': config.train_stride, 'test_stride': config.test_stride,
                       'num_branches': model.num_branches, 'masks_per_pixel': model.masks_per_pixel,
                       'size_multiple': multiple, 'seed': config.seed,
                       'r3': {'enabled': False, 'times': config.r3_times, 'prob': config.r3_prob}},
            'network_g': dict(network), 'path': {'pretrain_network_g': None, 'strict_load_g': True},
            'train': train_section(stage, optimizer=optimizer, scheduler=cosine_schedule(iters, 0.02 * lr),
                                   iters=iters, loss=loss)}


def train(images, model, network, config, *, multiple, finetune=False, initial_state=None):
    """Train the run's BasicSR model on random crops of the noisy ``images`` (tensors) for the configured budget.

    Returns (options, trained weights, record of iterations, CPU and wall seconds and the last step's loss).
    """
    seed = config.seed + (7919 if finetune else 0)
    budget = config.finetune_budget if finetune else config.budget
    iters = config.finetune_iters if finetune else config.iters
    crop, batch = (config.finetune_crop, config.finetune_batch) if finetune else (config.crop, config.batch)
    crop, batch = matched_crop(crop, batch, config.train_stride * multiple)

    def build(total_iter):
        torch.manual_seed(seed)
        options = model_options(model, network, config, multiple=multiple, iters=total_iter, finetune=finetune)
        return options, in_process_model(options, is_train=True, state_dict=initial_state)

    if iters is None:  # a CPU budget: the iterations that fit, from the speed of a throwaway copy of the model
        probe_batch = sample_batch(images, crop, batch, np.random.default_rng(seed + 1))
        rate = steps_per_second(build(1)[1], probe_batch, clock=time.process_time)
        iters = max(1, int(budget * rate))
    options, trained = build(iters)
    rng = np.random.default_rng(seed)
    cpu_start, wall_start = time.process_time(), time.time()
    train_in_process(trained, ({'lq': sample_batch(images, crop, batch, rng)} for _ in range(iters)))
    record = {'iters': iters, 'train_cpu_s': time.process_time() - cpu_start, 'train_wall_s': time.time() - wall_start,
              'loss': next(iter(trained.get_current_log().values()))}
    return options, trained.net_g.state_dict(), record


# ----------------------------------------------------------------------------------------------------- evaluation
def score_model(options, state_dict, val, config, *, r3):
    """Every validation block denoised with the weights ``state_dict``: mean PSNR / SSIM to the clean images, PSNR to
    the noisy input (identity indicator), checkerboard index; and the outputs (uint8 BGR). An AMSNet run (B, P) is
    denoised by the product's inference object, ``AMSNetDenoiser`` (what ``amsnet-denoise`` runs; R^3 for the -E
    rows); AP-BSN by its model's own ``test()`` (``common.evaluate``): its inference (PD_2, then R^3 with the network
    itself) is not AMSNet's, and no command of the package runs it."""
    start = time.process_time()
    if options['model_type'] == 'AMSNetModel':
        results = score_blocks(denoiser_from_state(options, state_dict, overrides={'r3': {'enabled': r3}}), val)
    else:
        results = evaluate(in_process_model(options, is_train=False, r3_enabled=r3, state_dict=state_dict), val)
    rows = [(r['psnr'], r['ssim'], calculate_psnr(r['denoised'], r['noisy'], crop_border=0),
             calculate_checkerboard(r['denoised'], r['clean'], stride=config.test_stride)) for r in results]
    mean = np.mean(rows, axis=0)
    return [r['denoised'] for r in results], {
        'psnr': mean[0], 'ssim': mean[1], 'psnr_to_noisy': mean[2], 'checkerboard': mean[3],
        'eval_cpu_s': time.process_time() - start, 'psnr_first': rows[0][0]}


def noisy_baseline(val, config):
    """The noisy input's scores (the same quantisation and metrics as the outputs') and its uint8 images."""
    images = [(to_uint8(noisy), to_uint8(clean)) for _, noisy, clean in val]
    rows = [(*scores(noisy, clean), calculate_checkerboard(noisy, clean, stride=config.test_stride))
            for noisy, clean in images]
    mean = np.mean(rows, axis=0)
    return dict(psnr=mean[0], ssim=mean[1], checkerboard=mean[2], images=len(val), psnr_first=rows[0][0]), images


def classical_baselines(val, config):
    """What a user would pick instead: OpenCV NLM and BM3D (:mod:`amsnet_basicsr.baselines`) on the validation
    images, each image's parameter chosen on the *other* validation images (leave-one-out: no image tunes its own
    filter). Mean PSNR / SSIM / checkerboard, seconds per image and the chosen parameters per filter; None with
    fewer than two validation images."""
    if len(val) < 2:
        return None

    def psnr(output, clean):
        return scores(to_uint8(output), to_uint8(clean))[0]

    results = {}
    for name in baselines.FILTERS:
        rows, parameters, seconds = [], [], []
        for index, block in enumerate(val):
            parameter, (output, ), time_per_image = baselines.tune_and_apply(name, val[:index] + val[index + 1:],
                                                                             [block], psnr)
            output8, clean8 = to_uint8(output), to_uint8(block[2])
            rows.append((*scores(output8, clean8), calculate_checkerboard(output8, clean8, stride=config.test_stride)))
            parameters.append(float(parameter))
            seconds.append(time_per_image)
        mean = np.mean(rows, axis=0)
        results[name] = dict(psnr=float(mean[0]), ssim=float(mean[1]), checkerboard=float(mean[2]),
                             seconds_per_image=float(np.mean(seconds)), parameters=parameters)
    return results


# ------------------------------------------------------------------------------------------------------- reporting
def spread(row, key, digits):
    """``mean`` or, over several seeds, ``mean ± standard deviation``."""
    text = f'{row[key]:.{digits}f}'
    return text + (f' ± {row[key + "_std"]:.{digits}f}' if key + '_std' in row else '')


def markdown(results, baseline, config, command, classical=None):
    lines = ['# AMSNet ablation (benchmarks/ablation.py)', '', f'Command: `{command}`', '',
             'Budget per training run: ' + (f'{config.iters} iterations' if config.iters else
                                             f'{config.budget:g} CPU s, iterations set by a speed probe') +
             ' (base), ' + (f'{config.finetune_iters} iterations' if config.finetune_iters else
                            f'{config.finetune_budget:g} CPU s') + ' (fine-tune P, from the base B). '
             f'Crops {config.crop}px x {config.batch} (fine-tune {config.finetune_crop}px x {config.finetune_batch}), '
             f'AdamW lr {config.lr:g} (fine-tune {config.finetune_lr:g}; BasicSR cosine decay), PD stride '
             f'{config.train_stride} (train) / {config.test_stride} (test), '
             f'R3 T={config.r3_times} p={config.r3_prob}.', '',
             f'Noisy input: PSNR {baseline["psnr"]:.2f} dB, SSIM {baseline["ssim"]:.4f}, checkerboard '
             f'{baseline["checkerboard"]:.2f} (mean over {baseline["images"]} validation images).', '',
             ('Classical filters, each image\'s parameter chosen on the other validation images (leave-one-out): ' +
              '; '.join(f'{name} PSNR {spread(row, "psnr", 2)}, SSIM {spread(row, "ssim", 4)}, CB '
                        f'{spread(row, "checkerboard", 2)}, {row["seconds_per_image"]:.2f} s per image'
                        for name, row in classical.items()) + '.') if classical else
             'Classical filters: not run (leave-one-out tuning needs at least two validation images).', '',
             'PSNR/SSIM: to the clean image (8-bit, RGB). "to noisy": PSNR of the output to the noisy input (high = '
             'close to the identity). CB: checkerboard index at the test stride, in grey levels (lower is smoother; '
             'amsnet_basicsr/metrics.py). Final loss: the training loss of the last step (L_m for AMSNet-B, L1 to '
             'the noisy input for AP-BSN, L_t for P; a loss far below the others\' means the network copies noise). '
             'Iterations, CPU and wall seconds are for training the row\'s model '
             '(a base model shared by several rows is trained once; P rows add their fine-tune); '
             'eval: inference CPU s.',
             '']
    for group in GROUPS:
        rows = [r for r in results if r['group'] == group]
        if not rows:
            continue
        lines += [f'## {group}', '', '| setting | PSNR | SSIM | to noisy | CB | final loss | params | iters | '
                  'train CPU s | train wall s | eval s |', '|---|---|---|---|---|---|---|---|---|---|---|']
        for r in rows:
            lines.append(f'| {r["setting"]} | {spread(r, "psnr", 2)} | {spread(r, "ssim", 4)} | '
                         f'{spread(r, "psnr_to_noisy", 2)} | {spread(r, "checkerboard", 2)} | {spread(r, "loss", 4)} | '
                         f'{r["params"] / 1e3:.0f}K | {r["iters"]} | {r["train_cpu_s"]:.0f} | '
                         f'{r["train_wall_s"]:.0f} | {r["eval_cpu_s"]:.1f} |')
        lines.append('')
    return '\n'.join(lines)


def label(canvas, text, origin, scale=0.4, colour=(0, 0, 0)):
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def figure(results, outputs, reference, baseline, path, crop=64):
    """Per group: one column per setting (after the noisy input and the clean image), each with a bar of its mean
    PSNR (grey: the noisy input) above the same crop of its output on the first validation image. ``reference``:
    the (noisy, clean) uint8 BGR images of that block; ``outputs``: each row's uint8 BGR outputs."""
    noisy, clean = reference
    height, width = noisy.shape[:2]
    size = min(crop, height, width)
    top, left = (height - size) // 2, (width - size) // 2
    scale = max(1, 128 // size)
    cell_width, bar_height = max(size * scale, 150) + 6, 120

    def tile(image, caption):
        patch = cv2.resize(image[top:top + size, left:left + size], None, fx=scale, fy=scale,
                           interpolation=cv2.INTER_NEAREST)
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
    imwrite(np.concatenate(blocks, axis=0), str(path))


# ------------------------------------------------------------------------------------------------------------ main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='ablation.py', description=__doc__.split('\n\n')[0],
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
    parser.add_argument('--seeds', type=int, default=1,
                        help='repeat every run for seeds --seed .. --seed + N - 1 (data noise, crops, masks, '
                        'initialisation) and report mean ± standard deviation')
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
    """Console entry (``python benchmarks/ablation.py``): exit status 0, or 2 with one line naming the problem."""
    return run_command('ablation.py', run, argv)


def run(argv=None):
    """Run the requested groups (module docstring); returns the result rows also written to ablation.json."""
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
    log = open(out / 'ablation.log', 'w')

    def say(text):
        print(text, flush=True)
        log.write(text + '\n')
        log.flush()

    command = 'python benchmarks/ablation.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    runs = [run_seed(args, groups, denoisers, dataclasses.replace(config, seed=seed), say)
            for seed in range(config.seed, config.seed + args.seeds)]
    results, outputs, baseline, baseline_images, classical = runs[0] if len(runs) == 1 else (
        over_seeds([run[0] for run in runs]), runs[0][1], over_seeds([[run[2]] for run in runs])[0], runs[0][3],
        runs[0][4] and dict(zip(runs[0][4], over_seeds([list(run[4].values()) for run in runs]))))
    (out / 'ablation.md').write_text(markdown(results, baseline, config, command, classical) + '\n')
    (out / 'ablation.json').write_text(json.dumps({'command': command, 'config': dataclasses.asdict(config),
                                                   'seeds': list(range(config.seed, config.seed + args.seeds)),
                                                   'noisy': baseline, 'classical': classical, 'rows': results},
                                                  indent=1, default=float))
    figure(results, outputs, baseline_images[0], baseline, out / 'ablation.png')
    say(f'wrote {out / "ablation.md"}, {out / "ablation.json"}, {out / "ablation.png"}')
    log.close()
    return results


SPREAD_KEYS = ('psnr', 'ssim', 'psnr_to_noisy', 'checkerboard', 'loss')


def over_seeds(runs):
    """Rows of several seeds (same plan) -> one row each: the mean of every score, its sample standard deviation
    (``<key>_std``) and the per-seed values (``<key>_per_seed``); the other fields are the first seed's."""
    merged = []
    for rows in zip(*runs):
        row = dict(rows[0])
        for key in SPREAD_KEYS:
            if key in row:
                values = [float(r[key]) for r in rows]
                row.update({key: float(np.mean(values)), f'{key}_std': float(np.std(values, ddof=1)),
                            f'{key}_per_seed': values})
        merged.append(row)
    return merged


def run_seed(args, groups, denoisers, config, say):
    """Every run of the plan with ``config.seed``: (result rows, output images, noisy baseline, its images)."""
    train_images, val = (folder_data(args.train_dir, args.val_noisy, args.val_clean) if args.train_dir
                         else demo_ablation_data(args.tiny, config.seed))
    train_tensors = [to_tensor(image) for _, image in train_images]
    baseline, baseline_images = noisy_baseline(val, config)
    say(f'noisy input: PSNR {baseline["psnr"]:.2f} dB over {len(val)} validation images; {len(train_images)} '
        f'training images; config {config}')
    classical = classical_baselines(val, config)
    for name, row in (classical or {}).items():
        say(f'{name} (leave-one-out over the validation images): PSNR {row["psnr"]:.2f}  SSIM {row["ssim"]:.4f}  '
            f'CB {row["checkerboard"]:.2f}  parameters {row["parameters"]}')

    trained = {}

    def get_model(model):
        """Train (once) and return (options, weights, record) for ``model``; P fine-tunes from its B's weights."""
        if model in trained:
            return trained[model]
        network, multiple = network_spec(model, args.tiny)
        if model.finetune_lambda is None:
            options, state, record = train(train_tensors, model, network, config, multiple=multiple)
        else:
            _, base_state, base_record = get_model(model.base())
            options, state, record = train(train_tensors, model, network, config, multiple=multiple, finetune=True,
                                           initial_state=base_state)
            record = {**record, 'iters': f'{base_record["iters"]}+{record["iters"]}',
                      'train_cpu_s': base_record['train_cpu_s'] + record['train_cpu_s'],
                      'train_wall_s': base_record['train_wall_s'] + record['train_wall_s']}
        record['params'] = sum(value.numel() for value in state.values())
        say(f'trained {model}: {record}')
        trained[model] = (options, state, record)
        return trained[model]

    results, outputs = [], []
    for row in plan(groups, denoisers):
        options, state, record = get_model(row.model)
        images, metrics = score_model(options, state, val, config, r3=row.r3)
        result = {'group': row.group, 'setting': row.setting, 'model': dataclasses.asdict(row.model), 'r3': row.r3,
                  **record, **metrics}
        say(f'{row.group:9s} {row.setting:36s} PSNR {result["psnr"]:.2f}  SSIM {result["ssim"]:.4f}  '
            f'to-noisy {result["psnr_to_noisy"]:.2f}  CB {result["checkerboard"]:.2f}  iters {record["iters"]}')
        results.append(result)
        outputs.append(images)
    return results, outputs, baseline, baseline_images, classical


if __name__ == '__main__':
    sys.exit(main())
