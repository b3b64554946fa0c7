"""``amsnet-distill-prepare``: precompute the teacher targets of stage ``distill`` (:mod:`amsnet_basicsr.distill`).

The frozen teacher (``network_teacher``, ``path.pretrain_network_teacher``, ``amsnet_teacher`` of the student's
options file) denoises every crop of the noisy training LMDB ``datasets.train.dataroot_lq``; the outputs go, under the
same keys, into the LMDB ``datasets.train.dataroot_gt`` that BasicSR's ``PairedImageDataset`` then reads with the
noisy crops. Only noisy crops are read.

Restartable and never half-written: crops are committed one by one into ``<output>.partial/`` as they are
computed; a rerun with the same teacher, weights (SHA-256), scheme and source continues where the last run
stopped (with other settings it starts again); the LMDB is renamed into place, with its ``meta_info.txt`` and
``amsnet_teacher.json``, only when every crop is in it. An existing output is replaced only with ``--force``.
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import shutil
import sys
import time

import cv2
import numpy as np
import torch

from .. import image_io
from ..distill import TEACHER_INFO, teacher_output
from ..errors import DataError, OptionError, SetupError, run_command
from ..files import atomic_write
from ..output_folder import remove_written
from .sidd_prepare import png_header_size

PARTIAL_SUFFIX = '.partial'


def _file_digest(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _lmdb_keys(folder):
    from basicsr.data.data_util import paths_from_lmdb
    if not osp.isfile(osp.join(folder, 'meta_info.txt')):
        raise DataError(f'{folder}: not a BasicSR LMDB (no meta_info.txt)')
    return paths_from_lmdb(folder)


def _previous_settings(path):
    """The settings of an interrupted build, or None when they are missing or unreadable (then it starts again)."""
    try:
        with open(path, encoding='utf-8') as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def prepare_targets(opt, *, force=False, device='cpu', progress=True, log=print):
    """Write the teacher's output on every crop of ``datasets.train.dataroot_lq`` (a BasicSR LMDB of noisy crops)
    into the LMDB ``datasets.train.dataroot_gt`` (same keys, 8-bit PNG, BasicSR's ``meta_info.txt``); returns a
    summary dict. See the module docstring for restarts and atomicity."""
    import lmdb

    dataset = ((opt.get('datasets') or {}).get('train')) or {}
    source, output = dataset.get('dataroot_lq'), dataset.get('dataroot_gt')
    if not source or not output:
        raise OptionError('datasets.train.dataroot_lq (noisy LMDB) and datasets.train.dataroot_gt (targets LMDB to '
                          'write) are both required')
    source, output = osp.normpath(str(source)), osp.normpath(str(output))
    if not output.endswith('.lmdb'):
        raise OptionError(f'datasets.train.dataroot_gt: {output} must end with .lmdb (BasicSR LMDB convention)')
    if osp.exists(output) and not force:
        raise SetupError(f'{output} exists; pass --force to rebuild it')
    if osp.exists(output) and not osp.isfile(osp.join(output, TEACHER_INFO)):
        raise SetupError(f'{output} was not written by amsnet-distill-prepare (no {TEACHER_INFO}): refusing to '
                         'replace it; choose another datasets.train.dataroot_gt')
    keys = _lmdb_keys(source)
    from ..distill import build_teacher
    teacher, config = build_teacher(opt, device)
    weights = opt['path']['pretrain_network_teacher']
    beside = osp.dirname(osp.abspath(output))  # paths relative to the output's folder: a moved folder still matches
    settings = dict(teacher=opt['network_teacher'], weights=osp.relpath(osp.abspath(weights), beside),
                    weights_sha256=_file_digest(weights), param_key=opt['path'].get('param_key_teacher') or 'auto',
                    scheme=json.loads(json.dumps(config, default=lambda value: value.__dict__)),
                    source=osp.relpath(osp.abspath(source), beside), crops=len(keys))
    partial_root = output + PARTIAL_SUFFIX
    partial = osp.join(partial_root, osp.basename(output))
    settings_path = osp.join(partial_root, 'settings.json')
    if osp.exists(partial_root):
        if _previous_settings(settings_path) == settings:
            log(f'continuing the interrupted build in {partial_root}')
        else:
            log(f'removing {partial_root}: an interrupted build with other settings')
            remove_written(partial_root, 'settings.json', 'amsnet-distill-prepare')
    os.makedirs(partial_root, exist_ok=True)
    atomic_write(settings_path, lambda handle: handle.write(json.dumps(settings, indent=2).encode()))
    source_env = lmdb.open(source, readonly=True, lock=False, readahead=False)
    map_size = max(os.path.getsize(osp.join(source, 'data.mdb')) * 3, 1 << 26)
    target_env = lmdb.open(partial, map_size=map_size)
    bar = None
    start = time.perf_counter()
    try:
        with target_env.begin() as txn:
            done = {key.decode('ascii') for key, _ in txn.cursor()}
        todo = [key for key in keys if key not in done]
        log(f'teacher {opt["network_teacher"]["type"]} ({weights}): {len(keys)} noisy crops of {source} -> {output} '
            f'({len(done)} already done)')
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(keys), initial=len(keys) - len(todo), unit='crop', desc='teacher targets',
                       file=sys.stderr)
        with source_env.begin() as source_txn:
            for key in todo:
                content = source_txn.get(key.encode('ascii'))
                if content is None:
                    raise DataError(f'{source}: key {key} of meta_info.txt is not in the LMDB')
                noisy = image_io.to_float_bgr(image_io.decode(content, f'{source}:{key}'))
                tensor = torch.from_numpy(np.ascontiguousarray(noisy[..., ::-1])).permute(2, 0, 1)[None]
                target = teacher_output(teacher, config, tensor.to(device))[0].permute(1, 2, 0).cpu().numpy()
                image = np.rint(target[..., ::-1] * 255.0).astype(np.uint8)
                ok, encoded = cv2.imencode('.png', image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
                if not ok:
                    raise DataError(f'cannot PNG-encode the target of {key}')
                with target_env.begin(write=True) as txn:  # one crop per transaction: a kill loses at most one
                    txn.put(key.encode('ascii'), encoded.tobytes())
                if bar is not None:
                    bar.update(1)
        shapes = {}
        with target_env.begin() as txn:
            for key in keys:
                shapes[key] = png_header_size(txn.get(key.encode('ascii'))[:29], key)[:3]  # no decode
    finally:
        if bar is not None:
            bar.close()
        source_env.close()
        target_env.close()
    with open(osp.join(partial, 'meta_info.txt'), 'w', encoding='utf-8') as handle:
        for key in keys:
            height, width, channels = shapes[key]
            handle.write(f'{key}.png ({height},{width},{channels}) 1\n')
    with open(osp.join(partial, TEACHER_INFO), 'w', encoding='utf-8') as handle:
        json.dump(settings, handle, indent=2)
    if osp.exists(output):  # --force: the old LMDB stays usable until the new one is complete
        remove_written(output, TEACHER_INFO, 'amsnet-distill-prepare')
    os.replace(partial, output)
    shutil.rmtree(partial_root)
    seconds = time.perf_counter() - start
    log(f'wrote {len(keys)} teacher targets to {output} ({len(todo)} computed in {seconds:.1f} s)')
    return dict(settings, output=osp.abspath(output), computed=len(todo), seconds=seconds)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='amsnet-distill-prepare',
        description='Precompute the teacher targets of stage distill: the frozen AMSNet teacher (network_teacher, '
                    'amsnet_teacher) on every noisy crop of datasets.train.dataroot_lq, written to the LMDB '
                    'datasets.train.dataroot_gt.')
    parser.add_argument('-opt', '--opt', required=True, help='the distill options file (train.stage: distill)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'], help='(default: %(default)s)')
    parser.add_argument('--force', action='store_true', help='rebuild an existing targets LMDB')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def main(argv=None):
    """Console script ``amsnet-distill-prepare``; exit codes as in :mod:`amsnet_basicsr.errors`."""
    from .. import plugin  # noqa: F401  (registers the architectures; applies the torchvision alias before basicsr)
    from ..networks import load_options

    args = parse_args(argv)

    def run():
        if args.device == 'cuda' and not torch.cuda.is_available():
            raise SetupError('--device cuda: no CUDA device is available (use --device cpu)')
        prepare_targets(load_options(args.opt), force=args.force, device=args.device, progress=not args.quiet)
        return 0

    return run_command('amsnet-distill-prepare', run)


if __name__ == '__main__':
    sys.exit(main())
