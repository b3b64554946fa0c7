"""Shared fixtures: tiny noisy/clean image folders and BasicSR option files written to tmp_path."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]


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


def correlated_noisy(clean, sigma, rng):
    """Clean image plus Gaussian noise blurred over 3x3 (spatially correlated like demosaicked sRGB noise)."""
    noise = cv2.GaussianBlur(rng.normal(0, 1, clean.shape).astype(np.float32), (3, 3), 0.8)
    return np.clip(clean + sigma * noise / noise.std(), 0, 1)


def smooth_scene(height, width, rng):
    """A smooth colourful test scene in [0, 1] (HWC, RGB)."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    phases = rng.uniform(0, 2 * np.pi, 3)
    return np.stack([0.5 + 0.35 * np.sin(4 * xx + 3 * yy + p) for p in phases], axis=-1).astype(np.float32)


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


def write_options(path, options):
    path.write_text(yaml.safe_dump(options, sort_keys=False))
    return path


def run_entry_point(script, option_file, cwd, *extra, timeout=300):
    """Run ``amsnet_basicsr/<script>`` as users do, in ``cwd``; fail with its output if it fails."""
    result = subprocess.run([sys.executable, str(REPO / 'amsnet_basicsr' / script), '-opt', str(option_file), *extra],
                            cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})  # tiny nets: threads only add overhead
    assert result.returncode == 0, f'{script} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}'
    return result


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


def write_noisy_photo(path, height, width, rng, *, dtype=np.uint8):
    """A noisy smooth scene written as an 8-bit (or 16-bit) photo; returns the stored array."""
    noisy = correlated_noisy(smooth_scene(height, width, rng), 0.08, rng)[..., ::-1]
    scale = 255 if dtype == np.uint8 else 65535
    stored = (noisy * scale).round().astype(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), stored)
    return stored
