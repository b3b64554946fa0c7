"""Recipes: every training configuration a command uses, one builder per stage, each default written once.

A *recipe* is a flat dict of the choices behind a training run: denoiser size (``nc``, ``nb``), training tiles,
crops, batch, iterations and learning rate, PD strides, R^3, the distilled student's size, and for the demo how much
of its bundled photos it uses (:data:`RECIPES`). The builders turn a recipe and the paths of a packed training set
into the BasicSR options of one stage; :func:`train` runs them with ``python -m amsnet_basicsr.train`` in a
subprocess, :func:`in_process_model` builds them in this process.

Which command uses which:

* ``amsnet-train-folder``: ``RECIPES['folder']`` (``'quick'`` with ``--quick``), :func:`pack_noisy_tiles`,
  :func:`teacher_options`, :func:`distill_stage_options`, :func:`train` and :func:`inference_options` (its
  ``denoise.yml``);
* ``amsnet-demo``: ``amsnet-train-folder`` itself (its recipe), and the size of the bundled photos, blocks and splits
  of the same recipe (``max_train_side``, ``train_images``, ``val_block``, ``test_block``, ...);
* ``amsnet-denoise --adapt``: :func:`adaptation_options`;
* the research scripts in ``benchmarks/`` (ablation, checkpoint ranking, data shift): :func:`in_process_model`,
  ``RECIPES['full']`` through :func:`mask_stage_options`, :func:`train_section` / :func:`cosine_schedule` and
  :func:`scores`; their training loop, speed probe and block scoring are ``benchmarks/common.py``.
"""
import contextlib
import copy
import os
import os.path as osp
import subprocess
import sys
from typing import Callable, Iterable, Mapping, Optional, Sequence

import cv2
import numpy as np
import torch
import yaml

from . import (
    demo_data,
    plugin,  # noqa: F401  (registers AMSNet into BasicSR; must precede the basicsr imports)
)
from .errors import SetupError

from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.models import build_model
from basicsr.models.base_model import BaseModel
from basicsr.utils import img2tensor, imwrite, tensor2img
from basicsr.utils.lmdb_util import make_lmdb_from_imgs

Log = Callable[[str], None]

# Chosen on the demo's validation image only (see mask_stage_options). ``quick`` is a tiny configuration for the
# test-suite (runs in seconds; it checks that the pipeline works, not that it denoises well).
RECIPES = {
    'full': dict(train_tile=128, max_train_side=512, max_eval_side=512, crop=60, batch=8, iters=2000, lr=3e-3,
                 nc=16, nb=4, train_stride=2, test_stride=2, val_block=256, test_block=256, r3_times=8,
                 train_images=demo_data.TRAIN_IMAGES, test_images=demo_data.TEST_IMAGES, max_test_blocks=3,
                 student_width=16, student_crop=64, student_batch=8, student_iters=400, student_lr=2e-3,
                 max_train_tiles=300),  # amsnet-train-folder's tile budget; the full demo's 296 tiles fit in it
    'quick': dict(train_tile=64, max_train_side=96, max_eval_side=96, crop=32, batch=4, iters=20, lr=3e-3, nc=8,
                  nb=3, train_stride=2, test_stride=2, val_block=48, test_block=64, r3_times=2,
                  train_images=demo_data.TRAIN_IMAGES[:2], test_images=demo_data.TEST_IMAGES[:1], max_test_blocks=2,
                  student_width=4, student_crop=32, student_batch=4, student_iters=10, student_lr=2e-3,
                  max_train_tiles=24),
}
# amsnet-train-folder on your photos: the demo's with a 6-layer, 32-channel denoiser (40 k parameters) trained 3,000
# iterations at a lower learning rate, chosen with amsnet-train-folder on the demo's training photos plus its
# validation photo, scored on the validation photo only (benchmarks/results/data_shift.md, "The recipe"): about 8
# CPU-minutes in all for two 1-MP photos.
RECIPES['folder'] = {**RECIPES['full'], 'nc': 32, 'nb': 6, 'lr': 1e-3, 'iters': 3000, 'bm3d_weight': 1.0,
                     'bm3d_psd_scale': 1.5, 'student_iters': 1600, 'low_frequency_anchor': 32}

MASK_EXPERIMENT = 'AMSNet_demo'
STUDENT_EXPERIMENT = 'AMSNet_D_demo'
TEACHER = 'AMSNet_folder'
# the student's inference tile, with the 2 x train_size overlap: within 1 grey level of the whole-image output on a
# 12 MP photo (docs/tiling.md), and the fastest measured as amsnet-denoise runs (2 threads, freed memory kept:
# 0.51 / 0.83 / 0.66 MP/s at 512 / 768 / 1,024 px on 12 MP, 0.52 / 0.62 / 0.79 on 3 MP; inference_speed.md)
STUDENT_TILE = 768


# ----------------------------------------------------------------------------------------------- shared sections
def single_process_options(options: Mapping, *, is_train: bool) -> dict:
    """A deep copy of ``options`` with what ``build_model`` needs in one process (no DDP)."""
    return {**copy.deepcopy(options), 'is_train': is_train, 'dist': False, 'rank': 0, 'world_size': 1}


def cosine_schedule(iters: int, eta_min: float) -> dict:
    """BasicSR's ``CosineAnnealingRestartLR``: one cosine decay over the whole run, down to ``eta_min``."""
    return {'type': 'CosineAnnealingRestartLR', 'periods': [iters], 'restart_weights': [1], 'eta_min': eta_min}


def train_section(stage: str, *, optimizer: dict, scheduler: dict, iters: int, loss: dict) -> dict:
    """The ``train`` section of a run of ``stage``: no weight EMA (``ema_decay`` 0), no warm-up."""
    return {'stage': stage, 'ema_decay': 0, 'optim_g': optimizer, 'scheduler': scheduler, 'total_iter': iters,
            'warmup_iter': -1, 'pixel_opt': loss}


def validation_frequency(iters: int) -> int:
    """Five validations per run, whatever its length."""
    return max(1, iters // 5)


def logger_section(iters: int, *, use_tb_logger: bool) -> dict:
    """Twenty log lines per run; only the final ``net_g_latest.pth`` is saved."""
    return {'print_freq': max(1, iters // 20), 'save_checkpoint_freq': 10 ** 9, 'use_tb_logger': use_tb_logger}


# ----------------------------------------------------------------------------------------------- stages
def mask_stage_options(config: Mapping, data: Mapping, *, seed: int, iters: int) -> dict:
    """Stage ``mask`` (variant B: L_m, Eq. 4; MMDB at the test stride, Eq. 6-8, then R3 at test time) of ``config``
    on the noisy LMDB ``data['lmdb']``, validated on the PNG pair ``data['val_folders']``. Chosen on the demo's
    validation image only:

    * ``amsnet.train_stride`` 2: the paper uses 5 because SIDD's noise stays correlated over several pixels; the
      demo noise's correlation is ~0.6 at distance 1, ~0.15 at 2 and ~0 from 3 on
      (``camera_noise.noise_correlation``). Stride 2 removes the strong distance-1 correlation, keeps 2.25x more
      pixels per sub-image than stride 3 and equals the test stride. On the validation image MMDB reached 23.4 dB
      after 400 iterations at train stride 2 vs 22.6 dB after 350 at stride 3 (photos at 1x, 6-layer 32-channel
      MaskAwareDnCNN); plain DnCNNs at stride 2 or 3 stayed below 21 dB after 400-800 iterations.
    * ``num_branches`` k = 2: 50 % of the pixels masked per branch, the paper's best ratio (Fig. 10).
    * R3 (T = ``r3_times``, p = 0.16, Sec. 3.3): +0.45 dB over MMDB alone on the validation image.
    * ``network_g``: ``MaskAwareDnCNN`` (input -> [x, valid, mean of the unmasked 3x3 neighbours] -> ``nb`` conv
      layers -> residual on the mean); plain DnCNN / U-Net need far more than a CPU's minutes to learn what a
      zeroed pixel means.
    * small crops buy iterations on a CPU; the LMDB holds NOISY tiles only; ``num_gpu: 0`` (a CPU recipe).
    * ``logger.use_tb_logger``: a ``train.py`` run of these options logs its curves to TensorBoard (amsnet-train-folder
      switches it off); only the final ``net_g_latest.pth`` is saved.
    """
    return {
        'name': MASK_EXPERIMENT, 'model_type': 'AMSNetModel', 'num_gpu': 0, 'manual_seed': seed, 'scale': 1,
        'amsnet': {'train_stride': config['train_stride'], 'test_stride': config['test_stride'], 'num_branches': 2,
                   'masks_per_pixel': 1, 'size_multiple': 1, 'chunk_size': None, 'seed': seed,
                   'r3': {'enabled': True, 'times': config['r3_times'], 'prob': 0.16}},
        'datasets': {
            'train': {'name': 'demo_noisy_tiles', 'type': 'NoisyImageDataset', 'dataroot_lq': osp.abspath(data['lmdb']),
                      'io_backend': {'type': 'lmdb'}, 'crop_size': config['crop'], 'use_hflip': True, 'use_rot': True,
                      'num_worker_per_gpu': 0, 'batch_size_per_gpu': config['batch'], 'dataset_enlarge_ratio': 100,
                      'prefetch_mode': None},
            'val': {'name': f'demo_val_{demo_data.VAL_IMAGE}', 'type': 'PairedImageDataset',
                    'dataroot_gt': osp.abspath(data['val_folders']['clean']),
                    'dataroot_lq': osp.abspath(data['val_folders']['noisy']), 'filename_tmpl': '{}',
                    'io_backend': {'type': 'disk'}}},
        'network_g': {'type': 'MaskAwareDnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': config['nc'], 'nb': config['nb']},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': train_section(
            'mask', optimizer={'type': 'Adam', 'lr': config['lr'], 'betas': [0.9, 0.999], 'weight_decay': 0},
            scheduler=cosine_schedule(iters, 1e-5), iters=iters, loss={'type': 'MaskedL1Loss', 'loss_weight': 1.0}),
        'val': {'val_freq': validation_frequency(iters), 'save_img': False,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}},
        'logger': logger_section(iters, use_tb_logger=True),
    }


def teacher_options(config: Mapping, lmdb_path: str, val_dir: str, *, iters: int, seed: int) -> dict:
    """amsnet-train-folder's stage ``mask`` (:func:`mask_stage_options`, L_m, Eq. 4) on its packed tiles, validated
    by the masked hold-out loss of the held-out noisy tiles ``val_dir`` (no clean image), with a checkpoint at
    every validation."""
    options = mask_stage_options(config, dict(lmdb=lmdb_path, val_folders={'noisy': val_dir, 'clean': val_dir}),
                                 seed=seed, iters=iters)
    options['name'] = TEACHER
    options['datasets']['val'] = {'name': 'held_out_noisy_tiles', 'type': 'SingleImageDataset',
                                  'dataroot_lq': osp.abspath(val_dir), 'io_backend': {'type': 'disk'}}
    options['val']['metrics'] = {'holdout': {'type': 'masked_holdout'}}
    options['logger'].update(save_checkpoint_freq=validation_frequency(iters), use_tb_logger=False)
    return options


def distill_stage_options(config: Mapping, data: Mapping, teacher: Mapping, teacher_weights: str, *, seed: int,
                          iters: int) -> dict:
    """Stage ``distill`` (AMSNet-D): the B-E model of the options ``teacher`` with the weights ``teacher_weights`` is
    the frozen teacher (``network_teacher``, its ``amsnet`` section as ``amsnet_teacher``); its outputs on the noisy
    training tiles ``data['lmdb']`` are precomputed into ``data['teacher_lmdb']``
    (:mod:`amsnet_basicsr.distill.targets`) and read with the noisy tiles by BasicSR's ``PairedImageDataset``.
    The student is spandrel's NAFNet with TLC (``LocalNAFNet``, exact on ``student_crop`` crops; width
    ``student_width``: 16 is the ~1.1 M-parameter student of the shipped SIDD options), trained with L1 to the
    targets and Adam with cosine decay, and run once per image at test time. Nothing clean is read: the teacher's
    validation section only feeds a logged metric."""
    options = copy.deepcopy(teacher)
    student_scheme = {'single_pass': True, 'tile': {'size': None}}
    if config.get('low_frequency_anchor'):  # the input's block means (inference.anchor_low_frequencies): no cast
        student_scheme['low_frequency_anchor'] = config['low_frequency_anchor']
    options.update(name=STUDENT_EXPERIMENT, manual_seed=seed, amsnet=student_scheme,
                   amsnet_teacher=copy.deepcopy(teacher['amsnet']), network_teacher=copy.deepcopy(teacher['network_g']))
    options['network_g'] = {'type': 'LocalNAFNet', 'img_channel': 3, 'width': config['student_width'],
                            'middle_blk_num': 1, 'enc_blk_nums': [1, 1, 1, 1], 'dec_blk_nums': [1, 1, 1, 1],
                            'train_size': config['student_crop']}
    options['datasets']['train'] = {
        'name': 'demo_noisy_tiles_and_teacher_targets', 'type': 'PairedImageDataset',
        'dataroot_lq': osp.abspath(data['lmdb']), 'dataroot_gt': osp.abspath(data['teacher_lmdb']),
        'io_backend': {'type': 'lmdb'}, 'gt_size': config['student_crop'], 'scale': 1, 'use_hflip': True,
        'use_rot': True, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': config['student_batch'],
        'dataset_enlarge_ratio': 100, 'prefetch_mode': None}
    options['path'] = {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                       'pretrain_network_teacher': osp.abspath(teacher_weights),
                       'ignore_resume_networks': ['network_teacher']}
    options['train'] = train_section(
        'distill', optimizer={'type': 'Adam', 'lr': config['student_lr'], 'betas': [0.9, 0.999]},
        scheduler=cosine_schedule(iters, 1e-5), iters=iters, loss={'type': 'L1Loss', 'loss_weight': 1.0})
    options['val'] = {**options['val'], 'val_freq': validation_frequency(iters)}
    options['logger'] = logger_section(iters, use_tb_logger=False)
    if config.get('bm3d_weight'):  # BM3D as a second teacher (amsnet_basicsr.distill.classical)
        options['classical_teacher'] = {'weight': config['bm3d_weight'], 'psd_scale': config['bm3d_psd_scale']}
    return options


def adaptation_options(options: Mapping, *, checkpoint: str, param_key: str, steps: int, lr: float, seed: int,
                       device_type: str) -> dict:
    """``amsnet-denoise --adapt``: ``steps`` training steps of stage ``mask`` (L_m, Eq. 4; Adam at ``lr``, constant)
    from ``checkpoint``, built in this process on one device (``num_gpu`` 1 on CUDA, else 0) with ``seed``."""
    opt = single_process_options(options, is_train=True)
    opt.update(num_gpu=int(device_type == 'cuda'), manual_seed=seed)
    opt['path'] = {'pretrain_network_g': checkpoint, 'param_key_g': param_key, 'strict_load_g': True}
    opt['train'] = train_section('mask', optimizer={'type': 'Adam', 'lr': lr},
                                 scheduler={'type': 'MultiStepLR', 'milestones': [steps + 1], 'gamma': 1},
                                 iters=steps, loss={'type': 'MaskedL1Loss'})
    return opt


def inference_options(train_options: Mapping, weights: str) -> dict:
    """Options for ``amsnet-denoise`` / ``test.py``: the trained network with its inference settings; ``weights`` as
    given (``amsnet-denoise`` reads a relative path from the options file's folder)."""
    options = {key: copy.deepcopy(train_options[key]) for key in ('model_type', 'network_g', 'amsnet')}
    options['amsnet'].pop('tile', None)  # the default tiles: photos of any size fit in memory
    train_size = options['network_g'].get('train_size')
    if train_size:  # LocalNAFNet: the same image at any tile size once the overlap is 2 x its window (docs/tiling.md)
        options['amsnet']['tile'] = {'size': STUDENT_TILE, 'overlap': 2 * train_size}
    options.update(name=train_options['name'] + '_denoise', num_gpu='auto', scale=1,
                   path={'pretrain_network_g': weights, 'param_key_g': 'params', 'strict_load_g': True})
    return options


def in_process_model(options: Mapping, *, is_train: bool, r3_enabled: Optional[bool] = None,
                     state_dict: Optional[Mapping] = None) -> BaseModel:
    """``build_model`` on a ``train.py`` options dict in this process (one process, no DDP), optionally with R^3
    switched on or off (``amsnet.r3.enabled``) and the denoiser's weights replaced by ``state_dict``."""
    opt = single_process_options(options, is_train=is_train)
    if r3_enabled is not None:
        opt['amsnet']['r3'] = {**opt['amsnet'].get('r3', {}), 'enabled': r3_enabled}
    model = build_model(opt)
    if state_dict is not None:
        model.net_g.load_state_dict(state_dict)
    return model


# ----------------------------------------------------------------------------------------------- training files
def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float RGB in [0, 1] -> (1, 3, H, W) float32 tensor (``basicsr.utils.img2tensor``)."""
    return img2tensor(np.ascontiguousarray(image), bgr2rgb=False, float32=True)[None]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1] -> uint8 BGR, quantised by ``basicsr.utils.tensor2img`` (clamp, x255, round)."""
    return tensor2img(to_tensor(image))


def scores(image: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(PSNR, SSIM) of uint8 images with BasicSR's metrics, crop_border 0 (the paper's convention)."""
    return calculate_psnr(image, reference, crop_border=0), calculate_ssim(image, reference, crop_border=0)


def write_png(path: str, image: np.ndarray, bits: int = 8) -> None:
    """Write a float RGB image in [0, 1] as an 8-bit (``basicsr.utils.tensor2img``) or 16-bit PNG."""
    if bits == 8:
        imwrite(to_uint8(image), path)
    else:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        if not cv2.imwrite(path, np.rint(np.clip(image[..., ::-1], 0, 1) * 65535).astype(np.uint16)):
            raise OSError(f'cannot write {path}')


def pack_noisy_tiles(named_images: Iterable[tuple[str, np.ndarray]], tiles_dir: str, lmdb_path: str, tile: int,
                     bits: Optional[Mapping[str, int]] = None, *,
                     corners: Optional[Mapping[str, Sequence[tuple[int, int]]]] = None) -> list[str]:
    """Cut every (name, noisy float RGB image) into non-overlapping ``tile`` x ``tile`` tiles (centred), write them as
    PNGs into ``tiles_dir`` (8-bit, or 16-bit for the names that ``bits`` maps to 16) and pack them into the BasicSR
    LMDB ``lmdb_path`` (``basicsr.utils.lmdb_util.make_lmdb_from_imgs``, its console output kept off the terminal);
    returns the keys ``<name>_<top>_<left>``, in the order of the images and of their tiles.

    ``corners`` (name -> top-left corners, a subset of ``demo_data.block_corners``) cuts only those tiles, and none
    of a name it lacks: amsnet-train-folder's sample of its tile budget (``max_train_tiles``), so that the LMDB and
    the teacher targets later computed on it do not grow with the folder."""
    keys = []
    for name, noisy in named_images:
        positions = demo_data.block_corners(*noisy.shape[:2], size=tile) if corners is None else corners.get(name, ())
        for top, left in positions:
            key = f'{name}_{top:04d}_{left:04d}'  # no dots: basicsr parses keys with split('.')
            write_png(osp.join(tiles_dir, key + '.png'), noisy[top:top + tile, left:left + tile],
                      bits=(bits or {}).get(name, 8))
            keys.append(key)
    # map_size: raw size of every tile + headroom (the default estimate can overflow).
    os.makedirs(osp.dirname(osp.abspath(lmdb_path)), exist_ok=True)
    with open(os.devnull, 'w') as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        make_lmdb_from_imgs(tiles_dir, lmdb_path, [key + '.png' for key in keys], keys,
                            map_size=len(keys) * tile * tile * 3 * 8 + 2 ** 24, multiprocessing_read=False)
    return keys


def write_options(out: str, options: Mapping, name: str) -> str:
    """Write ``options`` as ``out/name`` (YAML, in the builders' key order); returns the path."""
    path = osp.join(out, name)
    with open(path, 'w') as handle:
        handle.write('# AMSNet training options, written by amsnet_basicsr.recipes (each setting is explained '
                     'there)\n')
        yaml.safe_dump(options, handle, sort_keys=False)
    return path


# ----------------------------------------------------------------------------------------------- training
def _die_with_parent():
    """In the training child, before exec: Linux sends it SIGTERM when its parent dies (PR_SET_PDEATHSIG), so a killed
    command never leaves a trainer running on its folder."""
    import ctypes
    import signal
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def train(out: str, options_path: str, log: Log = print, extra: Sequence[str] = (),
          keep_fds: Sequence[int] = ()) -> None:
    """Run ``python -m amsnet_basicsr.train -opt options_path`` as a subprocess in ``out`` (with the flags ``extra``,
    e.g. ``--auto_resume``); its output is kept in train_stdout.log. The package's parent folder leads PYTHONPATH, so
    a checkout runs without installing. The child inherits the file descriptors ``keep_fds`` (a folder lock:
    :mod:`amsnet_basicsr.output_folder`), dies with this process and is stopped when this process is interrupted;
    its own one-line error becomes this command's :class:`SetupError`."""
    repo_root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    env = dict(os.environ)
    env['PYTHONPATH'] = repo_root + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    # The recipes' convolutions are tiny: one thread was 4x faster than two on the shared 2-core CPU they were tuned on.
    env.setdefault('OMP_NUM_THREADS', '1')
    command = [sys.executable, '-m', 'amsnet_basicsr.train', '-opt', osp.abspath(options_path), *extra]
    log_path = osp.join(out, 'train_stdout.log')
    shown = ('[epoch:', '# psnr', '# holdout', 'Error', 'Traceback')
    reported = []  # the child's own one-line error (errors.report), handed on as this command's error
    with open(log_path, 'a') as handle:
        process = subprocess.Popen(command, cwd=out, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, bufsize=1, pass_fds=tuple(keep_fds),
                                   preexec_fn=_die_with_parent if sys.platform == 'linux' else None)
        log(f'training (pid {process.pid}): ' + ' '.join(command))
        try:
            for line in process.stdout:
                handle.write(line)
                if ': error: ' in line and not line.startswith(' '):
                    reported.append(line.split(': error: ', 1)[1].strip())
                elif any(word in line for word in shown):
                    log('  | ' + line.rstrip())
            code = process.wait()
        except BaseException:
            process.terminate()
            process.wait()
            raise
    if code != 0:
        reason = reported[-1] if reported else f'exit status {code}'
        raise SetupError(f'training failed: {reason} (log: {log_path})')
