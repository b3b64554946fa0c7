"""amsnet-train-folder opens no clean file: self-supervised training (paper Sec. 3) reads the noisy photos and what it
wrote itself, nothing else, even with their clean versions on the same disk under the same names.

Every file opened while the command runs is recorded (:class:`OpenedFiles`): Python's ``open`` audit event (raised by
``builtins.open``, ``io.open`` and ``os.open``, hence also by ``image_io.read``, ``torch.load``, PIL and YAML
loading), plus the readers that open files in C, out of the audit hook's sight: ``cv2.imread`` / ``cv2.imreadmulti``
(BasicSR's LMDB packing reads the tiles with it) and ``lmdb.open``. train.py, a subprocess in a real run, is the
``stand_in_trainer`` here (fast tier: no process); what it would read is checked in the options it is handed."""
import os
import sys

import cv2
import lmdb
import numpy as np
import pytest

from amsnet_basicsr import baselines, demo, train_folder

from helpers import correlated_noisy, smooth_scene

_recording = []  # the OpenedFiles that records now, if any: the audit hook cannot be removed, only made idle
_hook_installed = []


def _audit(event, args):
    if event == 'open' and _recording:
        _recording[-1].paths.append(args[0])


class OpenedFiles:
    """``with OpenedFiles(monkeypatch) as opened:``: ``opened.real_paths()`` is the set of real paths of the files
    opened inside the block (descriptors, which name no file, left out)."""

    def __init__(self, monkeypatch):
        self.paths = []
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed.append(True)
        for module, name in ((cv2, 'imread'), (cv2, 'imreadmulti'), (lmdb, 'open')):
            monkeypatch.setattr(module, name, self._recorded(getattr(module, name)))

    def _recorded(self, reader):
        def read(path, *args, **kwargs):
            if _recording:
                self.paths.append(path)
            return reader(path, *args, **kwargs)
        return read

    def __enter__(self):
        _recording.append(self)
        return self

    def __exit__(self, *exc):
        _recording.remove(self)

    def real_paths(self):
        return {os.path.realpath(os.fsdecode(path)) for path in self.paths
                if isinstance(path, (str, bytes, os.PathLike))}


def under(path, folder):
    """Whether the real path ``path`` is ``folder`` or lies inside it (folders are opened too: to fsync them)."""
    folder = os.path.realpath(folder)
    return path == folder or path.startswith(folder + os.sep)


def paths_in(options):
    """Every absolute path named in an options dict (what train.py would open)."""
    if isinstance(options, dict):
        return [path for value in options.values() for path in paths_in(value)]
    if isinstance(options, list):
        return [path for value in options for path in paths_in(value)]
    return [options] if isinstance(options, str) and os.path.isabs(options) else []


def test_training_on_a_folder_opens_the_noisy_photos_and_no_clean_file(tmp_path, monkeypatch, stand_in_trainer):
    """Packing, checkpoint choice, the teacher's targets and the student's options (the whole command but train.py)
    open the noisy photos and files in --out only; the clean twins (same names, beside the photo folder) never."""
    photos, clean = tmp_path / 'photos', tmp_path / 'clean'
    photos.mkdir()
    clean.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        scene = smooth_scene(140, 150, rng)
        for folder, image in ((clean, scene), (photos, correlated_noisy(scene, 0.08, rng))):
            assert cv2.imwrite(str(folder / f'img_{index}.png'), (image[..., ::-1] * 255).round().astype(np.uint8))
    out = tmp_path / 'run'
    args = train_folder.parse_args([str(photos), '--out', str(out), '--quick', '--train-tile', '64', '--quiet'])

    with OpenedFiles(monkeypatch) as opened:
        train_folder.run(args, lambda message: None)

    paths = opened.real_paths()
    assert [path for path in paths if under(path, clean)] == []
    assert {os.path.realpath(photos / f'img_{index}.png') for index in range(2)} <= paths  # not vacuous: photos read
    assert any(under(path, out / 'data' / 'noisy_tiles') for path in paths)  # and cv2.imread was seen (the packing)
    assert [path for path in paths if under(path, tmp_path) and not (under(path, photos) or under(path, out))] == []
    assert (out / 'data' / 'train_teacher.lmdb').is_dir() and len(stand_in_trainer) == 2  # targets made, both stages
    named = [path for options in stand_in_trainer for path in paths_in(options)]
    assert named and [path for path in named if not under(os.path.realpath(path), out)] == []


def test_the_demo_trains_on_files_that_hold_no_clean_pixel(tmp_path, monkeypatch, stand_in_trainer):
    """The demo (--quick, BM3D replaced by the identity) makes its clean images only in memory and only after
    training: while amsnet-train-folder runs inside it, every file opened under its output lies in the noisy photo
    folder or the model folder, and the photos were opened."""
    monkeypatch.setitem(baselines.FILTERS, 'BM3D', (lambda noisy, factor: noisy, baselines.BM3D_FACTORS))
    recorders, run_folder = [], train_folder.run

    def recorded_run(args, log):
        with OpenedFiles(monkeypatch) as opened:
            recorders.append(opened)
            return run_folder(args, log)

    monkeypatch.setattr(train_folder, 'run', recorded_run)
    out = tmp_path / 'demo'
    demo.run_demo(['--quick', '--out', str(out)])
    (opened,) = recorders
    paths = [path for path in opened.real_paths() if under(path, tmp_path)]
    assert any(under(path, out / 'photos') for path in paths)
    assert [path for path in paths if not (under(path, out / 'photos') or under(path, out / 'model'))] == []


def _read_builtins(image, _):
    with open(image, 'rb') as handle:
        handle.read(1)


def _read_os(image, _):
    os.close(os.open(image, os.O_RDONLY))


def _read_cv2(image, _):
    cv2.imread(str(image))


def _read_lmdb(_, database):
    lmdb.open(str(database)).close()


@pytest.mark.parametrize('read', [_read_builtins, _read_os, _read_cv2, _read_lmdb])
def test_the_recorder_sees_each_kind_of_reader_inside_its_block_only(tmp_path, monkeypatch, read):
    image, database = tmp_path / 'image.png', tmp_path / 'db'
    cv2.imwrite(str(image), np.zeros((4, 4, 3), np.uint8))
    with OpenedFiles(monkeypatch) as opened:
        read(image, database)
    recorded = list(opened.paths)
    read(image, database)
    assert os.path.realpath(database if read is _read_lmdb else image) in opened.real_paths()
    assert opened.paths == recorded
