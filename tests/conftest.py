"""Shared fixtures of every test folder (core/, basicsr/, cli/, and benchmarks/tests, which loads this file): the
tiers (a fast test starts no process; one torch thread), tiny noisy/clean image folders, option files written to
tmp_path, entry points run as processes, the tiny training run (noisy folder, options, train.py and the probe entry
point tests/basicsr/train_probe.py), a stand-in trainer and a fake DND benchmark folder.

Plain constants and pure functions live in ``tests/helpers.py`` (this folder is put on ``sys.path`` for it); the
names ``REPO``, ``smooth_scene`` and ``correlated_noisy`` stay importable from here for older test files."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch
import yaml

# the torchvision alias basicsr 1.4.2 needs, before any test file imports basicsr (tests/core/test_scheme.py alone)
import amsnet_basicsr.basicsr_compat  # noqa: F401

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # `import helpers`, also when benchmarks/tests/conftest.py loads this file by path
    sys.path.insert(0, str(TESTS))

# REPO, smooth_scene and correlated_noisy are also re-exported (see above)
from helpers import REPO, TINY_NET, correlated_noisy, save_v73, smooth_scene  # noqa: E402,F401

TRAIN_PROBE = TESTS / 'basicsr' / 'train_probe.py'


@pytest.fixture(autouse=True)
def fast_tier_starts_no_process(request, monkeypatch):
    """Tests that start a process belong to the slow tier: the fast tier (``-m "not slow"``) stays under a minute."""
    if request.node.get_closest_marker('slow') is None:
        def refuse(*args, **kwargs):
            raise AssertionError(f'{request.node.nodeid} starts a process: mark it @pytest.mark.slow')
        monkeypatch.setattr(subprocess.Popen, '__init__', refuse)


@pytest.fixture(autouse=True)
def single_torch_thread():
    """Tiny networks run fastest on one thread (and a 2-core machine does not oversubscribe)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def image_folders(tmp_path):
    """noisy/ (training, noisy only) and val_noisy/ + val_clean/ (paired), 8-bit PNG."""
    rng = np.random.default_rng(0)
    folders = {name: tmp_path / name for name in ('noisy', 'val_noisy', 'val_clean')}
    for folder in folders.values():
        folder.mkdir()
    for index in range(4):
        clean = smooth_scene(64, 64, rng)
        cv2.imwrite(str(folders['noisy'] / f'train_{index}.png'),
                    (correlated_noisy(clean, 0.08, rng)[..., ::-1] * 255).round().astype(np.uint8))
    for index in range(2):
        clean = smooth_scene(48, 40, rng)
        cv2.imwrite(str(folders['val_clean'] / f'val_{index}.png'), (clean[..., ::-1] * 255).round().astype(np.uint8))
        cv2.imwrite(str(folders['val_noisy'] / f'val_{index}.png'),
                    (correlated_noisy(clean, 0.08, rng)[..., ::-1] * 255).round().astype(np.uint8))
    return folders


@pytest.fixture
def stand_in_trainer(monkeypatch):
    """``recipes.train`` (the train.py subprocess) replaced by a stand-in that saves the untrained network as the run's
    checkpoints: commands that train run in-process in milliseconds. Returns the list of options it was handed."""
    from amsnet_basicsr import recipes
    from amsnet_basicsr.networks import load_options
    handed = []

    def stand_in_train(out, options_path, log=print, extra=(), keep_fds=()):
        options = load_options(options_path)
        handed.append(options)
        models = os.path.join(out, 'experiments', options['name'], 'models')
        os.makedirs(models, exist_ok=True)
        state = {'params': recipes.in_process_model(options, is_train=False).net_g.state_dict()}
        for name in (f'net_g_{options["train"]["total_iter"]}.pth', 'net_g_latest.pth'):
            torch.save(state, os.path.join(models, name))

    monkeypatch.setattr(recipes, 'train', stand_in_train)
    return handed


# ------------------------------------------------------------------------------------ files and entry points
@pytest.fixture
def write_options():
    """``write_options(path, options)``: the options as a YAML file at ``path``; returns ``path``."""
    def write(path, options):
        path.write_text(yaml.safe_dump(options, sort_keys=False))
        return path
    return write


@pytest.fixture
def write_noisy_photo():
    """``write_noisy_photo(path, height, width, rng, dtype=np.uint8)``: a noisy smooth scene written as an 8-bit (or
    16-bit) photo; returns the stored array."""
    def write(path, height, width, rng, *, dtype=np.uint8):
        noisy = correlated_noisy(smooth_scene(height, width, rng), 0.08, rng)[..., ::-1]
        scale = 255 if dtype == np.uint8 else 65535
        stored = (noisy * scale).round().astype(dtype)
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), stored)
        return stored
    return write


@pytest.fixture
def run_entry_point():
    """``run_entry_point(script, option_file, cwd, *extra)``: ``amsnet_basicsr/<script>`` run as users do, in ``cwd``;
    fails the test with its output if it fails (slow tests only: it starts a process)."""
    def run(script, option_file, cwd, *extra, timeout=300):
        result = subprocess.run([sys.executable, str(REPO / 'amsnet_basicsr' / script), '-opt', str(option_file),
                                 *extra], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, 'OMP_NUM_THREADS': '1'})  # tiny nets: threads only add overhead
        assert result.returncode == 0, f'{script} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}'
        return result
    return run


# ------------------------------------------------------------------------------------ the tiny training run
@pytest.fixture
def noisy_folder(tmp_path):
    """``noisy_folder(count, size=48, seed=0)``: ``tmp_path/noisy`` with ``count`` random 8-bit RGB PNGs."""
    def make(count, size=48, seed=0):
        rng = np.random.default_rng(seed)
        folder = tmp_path / 'noisy'
        folder.mkdir()
        for index in range(count):
            cv2.imwrite(str(folder / f'img_{index}.png'), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        return folder
    return make


def _tiny_options(folder, name, iters, save_freq, dataset_type='NoisyImageDataset', batch=2, **train_extra):
    return {
        'name': name, 'model_type': 'AMSNetModel', 'num_gpu': 'auto', 'manual_seed': 0, 'scale': 1,
        'amsnet': {'train_stride': 2, 'test_stride': 2, 'num_branches': 2, 'seed': 0},
        'datasets': {'train': {'name': 'noisy', 'type': dataset_type, 'dataroot_lq': str(folder),
                               'io_backend': {'type': 'disk'}, 'crop_size': 24, 'use_hflip': True,
                               'use_rot': False, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': batch,
                               'dataset_enlarge_ratio': 1}},
        'network_g': dict(TINY_NET),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'stage': 'mask', 'optim_g': {'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 0},
                  'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [iters], 'restart_weights': [1],
                                'eta_min': 1e-6},
                  'total_iter': iters, 'warmup_iter': -1, 'pixel_opt': {'type': 'MaskedL1Loss'}, **train_extra},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': save_freq, 'use_tb_logger': False},
    }


@pytest.fixture
def tiny_options():
    """``tiny_options(folder, name, iters, save_freq, dataset_type='NoisyImageDataset', batch=2, **train_extra)``: the
    options of a tiny AMSNet-B run (``helpers.TINY_NET``: DnCNN with 8 channels, 24-px crops, no validation)."""
    return _tiny_options


@pytest.fixture
def train_probe():
    """``tests/basicsr/train_probe.py``: train.py plus probes (samples read, weights saved, simulated crashes)."""
    return TRAIN_PROBE


def _probe_env(probe_dir, **extra):
    probe_dir.mkdir(exist_ok=True)
    env = {**os.environ, 'PROBE_DIR': str(probe_dir), 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1', **extra}
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO), env.get('PYTHONPATH')]))
    return env


@pytest.fixture
def probe_env():
    """``probe_env(probe_dir, **extra)``: the environment of a training process with the probe writing to
    ``probe_dir`` (created), one OpenMP thread, the repository on PYTHONPATH and ``extra`` (e.g. PROBE_STOP_AFTER)."""
    return _probe_env


@pytest.fixture
def run_train():
    """``run_train(option_file, cwd, *extra, env=None, timeout=240, expect_ok=True)``: ``python
    amsnet_basicsr/train.py -opt ...`` in ``cwd`` with one OpenMP thread (the CPU is shared); the completed process."""
    def run(option_file, cwd, *extra, env=None, timeout=240, expect_ok=True):
        env = env or _probe_env(cwd / 'probe')
        result = subprocess.run([sys.executable, str(REPO / 'amsnet_basicsr' / 'train.py'), '-opt', str(option_file),
                                 *extra], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        if expect_ok:
            assert result.returncode == 0, f'train.py failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}'
        return result
    return run


# ------------------------------------------------------------------------------------ benchmark files
def _fake_dnd(root, num_images=2, boxes_per_image=3, size=(20, 26)):
    """info.mat (v7.3: info.boundingboxes = object references to 20x4 [r1 c1 r2 c2] matrices, 1-based inclusive)
    and images_srgb/%04d.mat (v7.3: InoisySRGB, float32 HxWx3 in [0, 1]). Returns images and boxes."""
    rng = np.random.default_rng(5)
    (root / 'images_srgb').mkdir(parents=True)
    images, boxes = [], []
    for index in range(num_images):
        image = rng.random(size + (3, )).astype(np.float32)
        image[:3, :3] = (1, 0, 0)
        images.append(image)
        save_v73(root / 'images_srgb' / f'{index + 1:04d}.mat', 'InoisySRGB', image)
        tops, lefts = rng.integers(1, size[0] - 8, boxes_per_image), rng.integers(1, size[1] - 10, boxes_per_image)
        boxes.append(np.stack([tops, lefts, tops + 6, lefts + 8], axis=1).astype(np.float64))  # 7 x 9 crops
    boxes[0][0] = (1, 1, 7, 9)  # the red corner
    with h5py.File(root / 'info.mat', 'w') as f:
        refs_group = f.create_group('#refs#')
        info = f.create_group('info')
        refs = np.empty((1, num_images), dtype=h5py.ref_dtype)
        for index, box in enumerate(boxes):
            refs[0, index] = refs_group.create_dataset(f'bb{index}', data=box.T).ref  # MATLAB 20x4 -> HDF5 4x20
        info.create_dataset('boundingboxes', data=refs, dtype=h5py.ref_dtype)
    return images, boxes


@pytest.fixture
def fake_dnd():
    """``fake_dnd(root, num_images=2, boxes_per_image=3, size=(20, 26))``: a DND benchmark folder in the real formats
    at ``root`` (info.mat with bounding boxes, images_srgb/*.mat); returns the images and the boxes."""
    return _fake_dnd
