"""``amsnet-distill-prepare``: precompute the teacher targets of stage ``distill`` (:mod:`amsnet_basicsr.distill`).

The frozen teacher (``network_teacher``, ``path.pretrain_network_teacher``, ``amsnet_teacher`` of the student's
options file) denoises every crop of the noisy training LMDB ``datasets.train.dataroot_lq`` -- MMDB (Eq. 6-8), then
R^3 when enabled, as :func:`~amsnet_basicsr.distill.teacher_output`; the outputs go, under the same keys, into the
LMDB ``datasets.train.dataroot_gt`` that BasicSR's ``PairedImageDataset`` then reads with the noisy crops. Only noisy
crops are read.

With a ``classical_teacher`` section (``{weight: w, psd_scale: s, noise_crops: n}``) the target is
``w * BM3D + (1 - w) * teacher``: BM3D given the noise's power spectral density, which is measured on the flat parts
of ``n`` evenly spaced noisy crops before any target is written (:mod:`amsnet_basicsr.distill.classical`; the
measurement is recorded with the settings). With ``w = 1`` the AMSNet teacher is not run.

Restartable and never half-written: crops are committed one by one into ``<output>.partial/`` as they are
computed; a rerun with the same teacher, weights (SHA-256), scheme and source continues where the last run
stopped (with other settings it starts again); the LMDB is renamed into place, with its ``meta_info.txt`` and
``amsnet_teacher.json``, only when every crop is in it. An existing output is replaced only with ``--force``, and
only when it is a targets LMDB (it holds ``amsnet_teacher.json``). The settings record the weights and the source as
paths relative to the output's folder, so a folder moved with its LMDBs still matches.

:func:`prepare_targets` runs five steps: :func:`_check_paths`, :func:`_settings`, :func:`_open_partial`,
:func:`_write_targets` (one crop at a time: :func:`_target_png`), :func:`_publish`.
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import shutil
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from .. import image_io
from ..config import SchemeConfig
from ..errors import DataError, OptionError, SetupError, run_command
from ..files import atomic_write
from ..output_folder import check_replaceable, remove_written
from . import TEACHER_INFO, build_teacher, teacher_output
from . import classical as classical_teacher

PARTIAL_SUFFIX = '.partial'
COMMAND = 'amsnet-distill-prepare'
Log = Callable[[str], Any]


def prepare_targets(opt: Mapping[str, Any], *, force: bool = False, device: str = 'cpu', progress: bool = True,
                    log: Log = print) -> Dict[str, Any]:
    """Write the teacher's output on every crop of ``datasets.train.dataroot_lq`` (a BasicSR LMDB of noisy crops)
    into the LMDB ``datasets.train.dataroot_gt`` (same keys, 8-bit PNG, BasicSR's ``meta_info.txt``); returns a
    summary dict (the settings, ``output``, ``computed``, ``seconds``). See the module docstring for restarts and
    atomicity."""
    source, output = _check_paths(opt, force)
    keys = _lmdb_keys(source)
    teacher, config = build_teacher(opt, device)
    classical = _classical_teacher(opt, source)
    settings = _settings(opt, config, source, output, len(keys))
    if classical is not None:
        settings[classical_teacher.SECTION] = dict(classical['section'], noise=classical['noise'].as_dict(),
                                                   bm3d_stages=classical_teacher.BM3D_STAGES)
    partial_root, partial = _open_partial(output, settings, log)
    start = time.perf_counter()
    label = (f'teacher {opt["network_teacher"]["type"]} ({opt["path"]["pretrain_network_teacher"]}): {len(keys)} '
             f'noisy crops of {source} -> {output}')
    if classical is not None:
        weight = classical['section']['weight']
        label += (f'; target = {weight:g} x BM3D (the noise PSD measured on {classical["section"]["noise_crops"]} '
                  f'noisy crops) + {1 - weight:g} x teacher')
    computed = _write_targets(teacher, config, source, partial, keys, device, progress,
                              lambda done: log(f'{label} ({done} already done)'), classical=classical)
    _publish(partial_root, partial, output, keys, settings)
    seconds = time.perf_counter() - start
    log(f'wrote {len(keys)} teacher targets to {output} ({computed} computed in {seconds:.1f} s)')
    return dict(settings, output=osp.abspath(output), computed=computed, seconds=seconds)


# ----------------------------------------------------------------------------------------------- the steps
def _check_paths(opt: Mapping[str, Any], force: bool) -> Tuple[str, str]:
    """(source, output) LMDB paths of ``datasets.train``; refuses an existing output without ``force`` and any
    existing output that this command did not write."""
    dataset = ((opt.get('datasets') or {}).get('train')) or {}
    source, output = dataset.get('dataroot_lq'), dataset.get('dataroot_gt')
    if not source or not output:
        raise OptionError('datasets.train.dataroot_lq (noisy LMDB) and datasets.train.dataroot_gt (targets LMDB to '
                          'write) are both required')
    source, output = osp.normpath(str(source)), osp.normpath(str(output))
    if not output.endswith('.lmdb'):
        raise OptionError(f'datasets.train.dataroot_gt: {output} must end with .lmdb (BasicSR LMDB convention)')
    check_replaceable(output, marker=TEACHER_INFO, command=COMMAND, force=force)
    return source, output


def _settings(opt: Mapping[str, Any], config: SchemeConfig, source: str, output: str, crops: int) -> Dict[str, Any]:
    """What the targets depend on (teacher, weights and their SHA-256, scheme, source, number of crops): recorded in
    ``amsnet_teacher.json``, and compared to continue an interrupted build. Paths are relative to the output's
    folder, so a moved folder still matches."""
    weights = opt['path']['pretrain_network_teacher']
    beside = osp.dirname(osp.abspath(output))
    return dict(teacher=opt['network_teacher'], weights=osp.relpath(osp.abspath(weights), beside),
                weights_sha256=_file_digest(weights), param_key=opt['path'].get('param_key_teacher') or 'auto',
                scheme=json.loads(json.dumps(config, default=lambda value: value.__dict__)),
                source=osp.relpath(osp.abspath(source), beside), crops=crops)


def _open_partial(output: str, settings: Dict[str, Any], log: Log) -> Tuple[str, str]:
    """(``<output>.partial``, the LMDB inside it): an interrupted build with the same settings is continued, one
    with other settings removed (only when ``settings.json`` proves it is this command's); the settings are written
    before any crop."""
    partial_root = output + PARTIAL_SUFFIX
    settings_path = osp.join(partial_root, 'settings.json')
    if osp.exists(partial_root):
        if _previous_settings(settings_path) == settings:
            log(f'continuing the interrupted build in {partial_root}')
        else:
            log(f'removing {partial_root}: an interrupted build with other settings')
            remove_written(partial_root, 'settings.json', COMMAND)
    os.makedirs(partial_root, exist_ok=True)
    atomic_write(settings_path, lambda handle: handle.write(json.dumps(settings, indent=2).encode()))
    return partial_root, osp.join(partial_root, osp.basename(output))


def _classical_teacher(opt: Mapping[str, Any], source: str) -> Optional[Dict[str, Any]]:
    """The checked ``classical_teacher`` section and the :class:`~amsnet_basicsr.distill.classical.NoiseModel`
    measured on ``noise_crops`` evenly spaced noisy crops; None without the section."""
    section = opt.get(classical_teacher.SECTION)
    if section is None:
        return None
    section = classical_teacher.check_section(section)
    return dict(section=section, noise=measured_noise(source, crops=section['noise_crops']))


def measured_noise(source: str, *, crops: int) -> classical_teacher.NoiseModel:
    """The :class:`~amsnet_basicsr.distill.classical.NoiseModel` measured on ``crops`` evenly spaced noisy crops of
    the BasicSR LMDB ``source`` (:func:`~amsnet_basicsr.distill.classical.estimate_noise`)."""
    import lmdb
    keys = _lmdb_keys(source)
    spaced = np.linspace(0, len(keys) - 1, min(crops, len(keys))).astype(int)
    env = lmdb.open(source, readonly=True, lock=False, readahead=False)
    try:
        with env.begin() as txn:
            noisy = [_stored_rgb(txn, source, keys[index]) for index in spaced]
    finally:
        env.close()
    return classical_teacher.estimate_noise(noisy)


def _write_targets(teacher: torch.nn.Module, config: SchemeConfig, source: str, partial: str, keys: Sequence[str],
                   device: str, progress: bool, started: Callable[[int], Any], *,
                   classical: Optional[Dict[str, Any]] = None) -> int:
    """Compute the crops of ``keys`` not yet in the LMDB ``partial`` and commit each in its own transaction (a kill
    loses at most one); ``started(number already done)`` is called first. Returns the number computed."""
    import lmdb
    source_env = lmdb.open(source, readonly=True, lock=False, readahead=False)
    target_env = lmdb.open(partial, map_size=max(os.path.getsize(osp.join(source, 'data.mdb')) * 3, 1 << 26))
    bar = None
    try:
        with target_env.begin() as txn:
            done = {key.decode('ascii') for key, _ in txn.cursor()}
        todo = [key for key in keys if key not in done]
        started(len(done))
        bar = _progress_bar(len(keys), len(keys) - len(todo)) if progress else None
        with source_env.begin() as source_txn:
            for key in todo:
                content = source_txn.get(key.encode('ascii'))
                if content is None:
                    raise DataError(f'{source}: key {key} of meta_info.txt is not in the LMDB')
                encoded = _target_png(teacher, config, content, f'{source}:{key}', device, classical)
                with target_env.begin(write=True) as txn:
                    txn.put(key.encode('ascii'), encoded)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        source_env.close()
        target_env.close()
    return len(todo)


def _target_png(teacher: torch.nn.Module, config: SchemeConfig, content: bytes, name: str, device: str,
                classical: Optional[Dict[str, Any]] = None) -> bytes:
    """The PNG bytes (8-bit BGR, BasicSR's LMDB convention) of the target of one stored noisy crop: the teacher's
    output, mixed with BM3D's by the ``classical_teacher`` weight when there is one."""
    noisy = np.ascontiguousarray(image_io.to_float_bgr(image_io.decode(content, name))[..., ::-1])
    weight = 0 if classical is None else classical['section']['weight']
    target = _teacher_rgb(teacher, config, noisy, device) if weight < 1 else 0
    if weight > 0:
        bm3d_estimate = classical_teacher.bm3d_denoise(noisy, classical['noise'],
                                                       psd_scale=classical['section']['psd_scale'])
        target = weight * bm3d_estimate + (1 - weight) * target
    image = np.rint(np.clip(target[..., ::-1], 0, 1) * 255.0).astype(np.uint8)
    ok, encoded = cv2.imencode('.png', image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise DataError(f'cannot PNG-encode the target of {name}')
    return encoded.tobytes()


def _teacher_rgb(teacher: torch.nn.Module, config: SchemeConfig, noisy: np.ndarray, device: str) -> np.ndarray:
    """The teacher's output (H, W, C) float RGB in [0, 1] on one noisy float RGB crop."""
    tensor = torch.from_numpy(noisy).permute(2, 0, 1)[None].to(device)
    return teacher_output(teacher, config, tensor)[0].permute(1, 2, 0).cpu().numpy()


def _stored_rgb(txn: Any, source: str, key: str) -> np.ndarray:
    content = txn.get(key.encode('ascii'))
    if content is None:
        raise DataError(f'{source}: key {key} of meta_info.txt is not in the LMDB')
    return np.ascontiguousarray(image_io.to_float_bgr(image_io.decode(content, f'{source}:{key}'))[..., ::-1])


def _publish(partial_root: str, partial: str, output: str, keys: Sequence[str], settings: Dict[str, Any]) -> None:
    """Complete the LMDB (``meta_info.txt``, ``amsnet_teacher.json``) and rename it to ``output``; with ``--force``
    the old targets LMDB stays usable until the new one is complete, and is deleted only as this command's."""
    _write_meta_info(partial, keys)
    with open(osp.join(partial, TEACHER_INFO), 'w', encoding='utf-8') as handle:
        json.dump(settings, handle, indent=2)
    if osp.exists(output):
        remove_written(output, TEACHER_INFO, COMMAND)
    os.replace(partial, output)
    shutil.rmtree(partial_root)


# ----------------------------------------------------------------------------------------------- helpers
def _write_meta_info(lmdb_path: str, keys: Sequence[str]) -> None:
    """BasicSR's ``meta_info.txt`` of a complete LMDB of PNGs: ``<key>.png (h,w,c) 1``, the sizes read from the PNG
    headers (no decode)."""
    import lmdb
    env = lmdb.open(lmdb_path, readonly=True, lock=False, readahead=False)
    try:
        with env.begin() as txn:
            heads = {key: txn.get(key.encode('ascii'))[:image_io.PNG_HEADER_BYTES] for key in keys}
    finally:
        env.close()
    with open(osp.join(lmdb_path, 'meta_info.txt'), 'w', encoding='utf-8') as handle:
        for key in keys:
            height, width, channels = image_io.png_header_size(heads[key], key)[:3]
            handle.write(f'{key}.png ({height},{width},{channels}) 1\n')


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _lmdb_keys(folder: str) -> List[str]:
    from basicsr.data.data_util import paths_from_lmdb
    if not osp.isfile(osp.join(folder, 'meta_info.txt')):
        raise DataError(f'{folder}: not a BasicSR LMDB (no meta_info.txt)')
    return paths_from_lmdb(folder)


def _previous_settings(path: str) -> Optional[Dict[str, Any]]:
    """The settings of an interrupted build, or None when they are missing or unreadable (then it starts again)."""
    try:
        with open(path, encoding='utf-8') as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _progress_bar(total: int, initial: int):
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit='crop', desc='teacher targets', file=sys.stderr)


# ----------------------------------------------------------------------------------------------- the command
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description='Precompute the teacher targets of stage distill: the frozen AMSNet teacher (network_teacher, '
                    'amsnet_teacher) on every noisy crop of datasets.train.dataroot_lq, written to the LMDB '
                    'datasets.train.dataroot_gt.')
    parser.add_argument('-opt', '--opt', required=True, help='the distill options file (train.stage: distill)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'], help='(default: %(default)s)')
    parser.add_argument('--force', action='store_true', help='rebuild an existing targets LMDB')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console script ``amsnet-distill-prepare``; exit codes as in :mod:`amsnet_basicsr.errors`."""
    from .. import plugin  # noqa: F401  (registers the architectures; applies the torchvision alias before basicsr)
    from ..networks import load_options

    args = parse_args(argv)

    def run():
        if args.device == 'cuda' and not torch.cuda.is_available():
            raise SetupError('--device cuda: no CUDA device is available (use --device cpu)')
        prepare_targets(load_options(args.opt), force=args.force, device=args.device, progress=not args.quiet)
        return 0

    return run_command(COMMAND, run)


if __name__ == '__main__':
    sys.exit(main())
