"""amsnet-train-folder: train AMSNet on a folder of your own noisy photos, then denoise them with the result.

    amsnet-train-folder photos/ --out results/my_photos
    amsnet-denoise photos/ denoised/ -opt results/my_photos/denoise.yml

Self-supervised on the photos themselves (paper Sec. 3: no clean image anywhere), so the photos to be denoised
are the training set by default -- a legitimate protocol for a self-supervised method, and the one that fits the
camera's noise best. Steps, each a part of this package that the other commands use too:

1. Pack: the photos are cut into non-overlapping tiles (``--train-tile``, centred) packed into a BasicSR LMDB
   (:func:`amsnet_basicsr.recipes.pack_noisy_tiles`; decoding full photos per training sample would spend most of
   every iteration on I/O). Every 20th tile is held out, as a noisy-only validation set. The training tiles are a
   budget, ``max_train_tiles`` of the recipe (``--max-train-tiles``; 300 tiles, 4.9 MP at 128 px: the demo's six
   photos whole): a folder with more tiles than the budget plus its held-out share packs a sample of them
   (:func:`sample_tiles`), so the packing, the teacher's targets (step 4) and the held-out scoring (step 3) cost the
   same for 10 photos or 1,000; a smaller folder packs all of its tiles.
2. Train AMSNet-B (stage ``mask``: L_m, Eq. 4) with the recipe ``RECIPES['folder']`` of
   :mod:`amsnet_basicsr.recipes` (:func:`~amsnet_basicsr.recipes.teacher_options`: MaskAwareDnCNN, PD stride 2,
   60-px crops, Adam with cosine decay; ``train.py`` in a subprocess, resumable with ``--resume``), saving a
   checkpoint at every validation.
3. Pick the checkpoint without clean images: the lowest masked hold-out loss (``masked_holdout``: L_m, Eq. 4,
   with fixed masks) on the held-out tiles (``benchmarks/results/checkpoint_ranking.md``).
4. Distil (stage ``distill``, AMSNet-D: :func:`amsnet_basicsr.recipes.distill_stage_options`) a single-pass
   student (``--student-iters``; 0 keeps the B-E model). Its target on each training tile is BM3D given the noise
   measured on the flat blocks of the noisy tiles: its PSD and colour correlation (``classical_teacher`` with
   weight 1, :mod:`amsnet_basicsr.distill.classical`); the student keeps the input's 32-px block means
   (``low_frequency_anchor``: no colour cast), less the noise's own mean at their level, measured with the PSD on
   the flattest blocks (``anchor_bias``: sRGB noise is not zero-mean). Denoising (``amsnet-denoise``) then covers
   every photo, whichever tiles were trained on.
5. Write ``denoise.yml`` (options for ``amsnet-denoise`` / ``test.py``:
   :func:`amsnet_basicsr.recipes.inference_options`) and ``model.pth``.

The recipe was chosen on the demo's validation photo (``docs/distillation.md``, "BM3D as the student's teacher");
how it compares with NLM and BM3D on other photos and camera pipelines: ``benchmarks/results/data_shift.md``.

``--out`` is owned (:mod:`amsnet_basicsr.output_folder`): it must lie outside the photo folder; an existing one is
taken only if it holds a record of an earlier run of this command, with ``--resume`` (continue it: packing and
finished steps are kept, training continues from its last checkpoint; refused when the photos or settings differ)
or ``--force`` (delete what that run wrote -- nothing else -- and start again). A lock keeps two runs (and their
training processes) out of one folder. The folder can be moved: ``denoise.yml`` names ``model.pth`` beside it.
"""
import argparse
import glob
import hashlib
import os
import os.path as osp
import shutil
import sys
import time
import urllib.parse
from dataclasses import dataclass

import numpy as np
import torch
import yaml

from . import demo_data, image_io, output_folder, recipes
from .denoise import IMAGE_EXTENSIONS, find_images
from .errors import CheckpointError, DataError, ImageError, SetupError, run_command
from .files import atomic_copy, atomic_write

HOLDOUT_EVERY = 20


def photo_key(relative):
    """A photo's LMDB key stem: its path relative to the input folder, extension included, percent-escaped so that no
    two paths share a key (``a.png``/``a.jpg``, ``sub/c.png``/``sub_c.png``) and no dot remains (BasicSR splits keys
    at the first dot). Tile keys append ``_<top>_<left>``, which the escape never produces."""
    return urllib.parse.quote(relative.as_posix(), safe='').replace('.', '%2E').replace('_', '%5F')


def fingerprint(path):
    """``<bytes>:<SHA-256>`` of a file: what --resume compares (names and contents, not where the folder is)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return f'{os.path.getsize(path)}:{digest.hexdigest()}'


@dataclass(frozen=True)
class Photo:
    """A usable photo of the folder: its LMDB key stem (:func:`photo_key`), file, size and sample depth (16 for
    16-bit and float photos, whose tiles keep that precision, else 8)."""
    key: str
    path: str
    height: int
    width: int
    bits: int


def read_photos(files, *, tile, log):
    """A :class:`Photo` of every readable photo of ``files`` ((path, relative path) pairs) at least ``tile`` px on its
    short side; unreadable files are reported and skipped. Each is decoded here only for its size and depth and not
    kept: :func:`pack` decodes again, one at a time, only the photos that hold a sampled tile (a folder of 12-MP
    photos would not fit in memory as float images)."""
    photos = []
    for path, relative in files:
        try:
            stored = image_io.read(path)
        except ImageError as error:
            log(f'skip {path}: {error}')
            continue
        if min(stored.shape[:2]) < tile:
            log(f'skip {path}: {stored.shape[1]}x{stored.shape[0]} is smaller than one {tile}-px tile')
            continue
        photos.append(Photo(photo_key(relative), str(path), *stored.shape[:2], 8 if stored.dtype == np.uint8 else 16))
    if not photos:
        raise DataError(f'no usable photos among {len(files)} files ({", ".join(IMAGE_EXTENSIONS)}, at least '
                        f'{tile} px a side)')
    return photos


def held_out(keys):
    """The held-out part of the packed ``keys`` (any sequence): every 20th, from index 10 on (at least one)."""
    return keys[HOLDOUT_EVERY // 2::HOLDOUT_EVERY] or keys[:1]


def tiles_to_pack(budget):
    """How many tiles to pack for ``budget`` training tiles: the fewest whose held-out share leaves ``budget``."""
    count = budget
    while count - len(held_out(range(count))) < budget:
        count += 1
    return count


def sample_tiles(photos, *, tile, budget, seed):
    """(number of candidate tiles, {photo key: [tile corners]}) of the tiles to pack: every non-overlapping tile of
    every photo (``demo_data.block_corners``) when they are at most :func:`tiles_to_pack` of ``budget``, else that
    many drawn without replacement from all of them by a NumPy generator seeded with ``seed`` (same seed, same
    photos: same tiles). One draw over all tiles, not a quota per photo: each tile is equally likely, so every
    photo keeps its share of the training set (by area) as when all tiles are packed. The corners keep their raster
    order, so the held-out rule (:func:`held_out`) spreads over the sample as over a whole folder."""
    candidates = [(photo.key, corner) for photo in photos
                  for corner in demo_data.block_corners(photo.height, photo.width, size=tile)]
    count = tiles_to_pack(budget)
    chosen = (np.sort(np.random.default_rng(seed).choice(len(candidates), size=count, replace=False))
              if len(candidates) > count else range(len(candidates)))
    corners = {}
    for index in chosen:
        key, corner = candidates[index]
        corners.setdefault(key, []).append(corner)
    return len(candidates), corners


def pack(files, out, *, tile, budget, budget_source, seed, log):
    """Step 1: the training LMDB (at most ``budget`` tiles: :func:`sample_tiles` with ``seed``) and the held-out
    validation tiles (noisy PNGs) under ``out/data``; ``budget_source`` names where the budget came from, for the
    log."""
    data = osp.join(out, 'data')
    lmdb_path, val_dir = osp.join(data, 'train_noisy.lmdb'), osp.join(data, 'val_noisy')
    if osp.isfile(osp.join(lmdb_path, 'meta_info.txt')):
        return lmdb_path, val_dir
    if osp.lexists(data):
        shutil.rmtree(data)  # an interrupted packing of this run (the folder is owned: output_folder.take)
    photos = read_photos(files, tile=tile, log=log)
    candidates, corners = sample_tiles(photos, tile=tile, budget=budget, seed=seed)
    tiles_dir = osp.join(data, 'noisy_tiles')
    partial = osp.join(data, 'partial', 'train_noisy.lmdb')  # moved into place once complete
    keys = recipes.pack_noisy_tiles(((photo.key, image_io.read_rgb(photo.path)) for photo in photos
                                     if photo.key in corners), tiles_dir, partial, tile,
                                    bits={photo.key: photo.bits for photo in photos}, corners=corners)
    if len(keys) < 2:
        raise DataError(f'{len(keys)} tile of {tile} px in the photos; training needs at least 2 (use a smaller '
                        '--train-tile)')
    os.makedirs(val_dir)
    kept_out = set(held_out(keys))
    for key in sorted(kept_out):
        shutil.copy(osp.join(tiles_dir, key + '.png'), osp.join(val_dir, key + '.png'))
    with open(osp.join(partial, 'meta_info.txt')) as handle:
        lines = [line for line in handle if line.split('.png')[0] not in kept_out]
    with open(osp.join(partial, 'meta_info.txt'), 'w') as handle:  # training keys only: held-out tiles stay out
        handle.writelines(lines)
    os.replace(partial, lmdb_path)
    budget_text = f'budget max_train_tiles={budget:,} ({budget_source})'
    if len(keys) < candidates:
        log(f'{len(photos):,} photos -> {candidates:,} candidate tiles of {tile}x{tile}; sampled {len(lines):,} for '
            f'training (+{len(kept_out):,} held out) from {len(corners):,} photos with --seed {seed}, {budget_text}; '
            f'training tiles in {lmdb_path}, held-out tiles for checkpoint selection in {val_dir}')
    else:
        log(f'{len(photos):,} photos -> {len(lines):,} training tiles of {tile}x{tile} in {lmdb_path}, '
            f'{len(kept_out):,} held out for checkpoint selection in {val_dir} (all {candidates:,} tiles: within the '
            f'{budget_text})')
    return lmdb_path, val_dir


def pick_checkpoint(options, models_dir, val_dir, log):
    """Step 3: (path, loss) of the saved ``net_g_<iter>.pth`` with the lowest mean masked hold-out loss on the
    held-out tiles."""
    tiles = [recipes.to_tensor(image_io.read_rgb(path)) for path in sorted(glob.glob(osp.join(val_dir, '*.png')))]
    scored = []
    for path in glob.glob(osp.join(models_dir, 'net_g_*.pth')):
        if not osp.basename(path)[len('net_g_'):-len('.pth')].isdigit():
            continue
        try:
            state = torch.load(path, map_location='cpu', weights_only=True)['params']
        except Exception as error:  # truncated, not a checkpoint, no params: the file is named, no traceback
            raise CheckpointError(f'{path}: not a readable checkpoint ({" ".join(str(error).split())[:200]}); '
                                  'pass --force to train again') from error
        model = recipes.in_process_model(options, is_train=False, state_dict=state)
        scored.append((float(np.mean([model.masked_holdout_loss(tile) for tile in tiles])), path))
    if not scored:
        raise SetupError(f'no checkpoint in {models_dir}')
    loss, path = min(scored)
    log('checkpoints by masked hold-out loss: ' + ', '.join(
        f'{osp.basename(p)[6:-4]}: {value:.5f}' for value, p in sorted(scored, key=lambda item: item[1])) +
        f' -> {osp.basename(path)}')
    return path, loss


def with_anchor_bias(options, targets_lmdb, log):
    """The student's ``options`` with ``amsnet.anchor_bias``, the noise's mean by level that the BM3D teacher measured
    on the noisy tiles (:func:`amsnet_basicsr.distill.classical.mean_bias`, recorded with the targets), when the
    student keeps the input's means (``low_frequency_anchor``); ``options`` itself otherwise, and for targets recorded
    before the measurement existed (said in the log)."""
    from .distill import check_targets_folder, classical
    if not options['amsnet'].get('low_frequency_anchor') or classical.SECTION not in options:
        return options
    noise = (check_targets_folder(targets_lmdb).get(classical.SECTION) or {}).get('noise') or {}
    if not noise.get('mean_bias'):
        log(f'{targets_lmdb} records no noise mean (an earlier version wrote it): denoise.yml keeps the noisy means '
            'as they are; --force measures it')
        return options
    return {**options, 'amsnet': {**options['amsnet'], 'anchor_bias': noise['mean_bias']}}


OWNED = ('data', 'experiments', 'tb_logger', 'train_folder.yml', 'distill_folder.yml', 'train_stdout.log',
         'model.pth', 'denoise.yml')  # everything this command writes into --out (output_folder.take)


@dataclass(frozen=True)
class Trained:
    """What :func:`run` made: ``options_path`` (``denoise.yml``: the student, or the B-E model with
    ``--student-iters 0``), the AMSNet-B checkpoint it chose and that checkpoint's training options (to run it as
    B-E: :func:`amsnet_basicsr.recipes.inference_options`), and the run's settings (``iters``, ``student_iters``,
    ...)."""
    options_path: str
    teacher_checkpoint: str
    teacher_options: dict
    settings: dict


def check_folders(folder, out):
    """Refuse an input that is not a folder, and an --out that is, contains or lies inside the input folder (the
    command's own tiles would become photos, and --force could reach the photos)."""
    if not osp.isdir(folder):
        raise SetupError(f'{folder} is not a folder of photos')
    real_in, real_out = osp.realpath(folder), osp.realpath(out)
    if real_out == real_in or real_in.startswith(real_out + os.sep) or real_out.startswith(real_in + os.sep):
        raise SetupError(f'--out {out} must lie outside the photo folder {folder} (and not contain it)')


def run(args, log):
    from .distill import targets as teacher_targets
    folder, out = osp.abspath(args.input), osp.abspath(args.out)
    check_folders(folder, out)
    recipe = 'quick' if args.quick else 'folder'
    config = dict(recipes.RECIPES[recipe], train_tile=args.train_tile)
    iters = args.iters or config['iters']
    student_iters = config['student_iters'] if args.student_iters is None else args.student_iters
    budget = args.max_train_tiles or config['max_train_tiles']
    budget_source = '--max-train-tiles' if args.max_train_tiles else f"recipes.RECIPES['{recipe}']"
    files = find_images(folder, out)
    settings = dict(quick=args.quick, train_tile=args.train_tile, iters=iters, student_iters=student_iters,
                    seed=args.seed, max_train_tiles=budget)
    owned = output_folder.take(out, command='amsnet-train-folder', names=OWNED, settings=settings,
                               inputs=[(relative.as_posix(), fingerprint(path)) for path, relative in files],
                               mode='resume' if args.resume else 'force' if args.force else 'new')
    torch.manual_seed(args.seed)
    lmdb_path, val_dir = pack(files, out, tile=args.train_tile, budget=budget, budget_source=budget_source,
                              seed=args.seed, log=log)

    options = recipes.teacher_options(config, lmdb_path, val_dir, iters=iters, seed=args.seed)
    teacher_dir = osp.join(out, 'experiments', recipes.TEACHER)
    models_dir = osp.join(teacher_dir, 'models')
    resume = ['--auto_resume'] if osp.isdir(osp.join(teacher_dir, 'training_states')) else []
    if not osp.isfile(osp.join(models_dir, 'net_g_latest.pth')):
        recipes.train(out, recipes.write_options(out, options, 'train_folder.yml'), log, extra=resume,
                      keep_fds=[owned.lock_fd])
    chosen, _ = pick_checkpoint(options, models_dir, val_dir, log)
    final_weights, final_options = chosen, options

    if student_iters:
        data = dict(lmdb=lmdb_path, teacher_lmdb=osp.join(out, 'data', 'train_teacher.lmdb'))
        distill = recipes.distill_stage_options(config, data, options, chosen, seed=args.seed, iters=student_iters)
        del distill['datasets']['val'], distill['val']  # no clean image and no hold-out loss for a student
        student = osp.join(out, 'experiments', recipes.STUDENT_EXPERIMENT, 'models', 'net_g_latest.pth')
        if not osp.isfile(student):
            if not osp.isfile(osp.join(data['teacher_lmdb'], 'meta_info.txt')):
                teacher_targets.prepare_targets(distill, device='cpu', progress=not args.quiet, log=log)
            resume = (['--auto_resume'] if osp.isdir(osp.join(out, 'experiments', recipes.STUDENT_EXPERIMENT,
                                                              'training_states')) else [])
            recipes.train(out, recipes.write_options(out, distill, 'distill_folder.yml'), log, extra=resume,
                          keep_fds=[owned.lock_fd])
        final_weights, final_options = student, with_anchor_bias(distill, data['teacher_lmdb'], log)

    model = osp.join(out, 'model.pth')
    atomic_copy(final_weights, model)
    kind = 'the distilled student (one pass)' if student_iters else 'AMSNet-B-E (MMDB + R3)'
    text = (f'# written by amsnet-train-folder: {kind}; model.pth is read from this file\'s folder\n' +
            yaml.safe_dump(recipes.inference_options(final_options, 'model.pth'), sort_keys=False))
    options_path = atomic_write(osp.join(out, 'denoise.yml'), lambda handle: handle.write(text.encode()))
    owned.release()
    log(f'done: amsnet-denoise {args.input} denoised/ -opt {options_path}')
    return Trained(options_path, chosen, options, settings)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='amsnet-train-folder', description=__doc__.split('\n\n')[0])
    parser.add_argument('input', help='folder of noisy photos (searched recursively; nothing clean is needed)')
    parser.add_argument('--out', required=True, help='output folder (LMDB, experiments, model.pth, denoise.yml)')
    parser.add_argument('--iters', type=int, help='AMSNet-B training iterations (default: 3000; quick: 20)')
    parser.add_argument('--student-iters', type=int, help='distillation iterations (default: 1600; quick: 10; '
                        '0 = keep the B-E model)')
    parser.add_argument('--train-tile', type=int, default=128,
                        help='side of the packed training tiles (default: 128)')
    budgets = {name: recipes.RECIPES[name]['max_train_tiles'] for name in ('folder', 'quick')}
    parser.add_argument('--max-train-tiles', type=int, metavar='N', help='training tiles, sampled with --seed from '
                        f'larger folders (default: {budgets["folder"]}; quick: {budgets["quick"]})')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--resume', action='store_true', help='continue an interrupted run in --out')
    parser.add_argument('--force', action='store_true', help='delete an earlier run in --out and start again')
    parser.add_argument('--quick', action='store_true', help='tiny networks and budgets (seconds; for tests)')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    args = parser.parse_args(argv)
    if args.train_tile < 64:
        parser.error('--train-tile must be >= 64 (the training crops are 60 px)')
    if args.iters is not None and args.iters < 1:
        parser.error(f'--iters must be >= 1, got {args.iters}')
    if args.student_iters is not None and args.student_iters < 0:
        parser.error(f'--student-iters must be >= 0, got {args.student_iters}')
    if args.max_train_tiles is not None and args.max_train_tiles < 2:
        parser.error(f'--max-train-tiles must be >= 2, got {args.max_train_tiles}')
    if not 0 <= args.seed < 2 ** 32:
        parser.error(f'--seed must be in [0, 2**32), got {args.seed}')
    return args


def main(argv=None):
    """Console script ``amsnet-train-folder``; exit codes as in :mod:`amsnet_basicsr.errors`."""
    args = parse_args(argv)
    start = time.time()

    def log(message):
        print(f'[amsnet-train-folder {time.time() - start:6.1f}s] {message}', flush=True)

    return run_command('amsnet-train-folder', run, args, log)


if __name__ == '__main__':
    sys.exit(main())
