"""amsnet-train-folder: a folder of noisy photos in, a model that amsnet-denoise uses out; resumable, no overwrite."""
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
import yaml

from amsnet_basicsr import recipes, train_folder

from helpers import REPO, correlated_noisy, smooth_scene


def command(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, '-m', *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_train_folder_leaves_a_model_amsnet_denoise_uses_and_never_overwrites(tmp_path):
    photos = tmp_path / 'photos'
    (photos / 'trip').mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index, size in enumerate(((150, 140), (140, 200))):
        noisy = correlated_noisy(smooth_scene(*size, rng), 0.08, rng)
        cv2.imwrite(str(photos / 'trip' / f'img_{index}.png'), (noisy[..., ::-1] * 255).round().astype(np.uint8))
    (photos / 'notes.png').write_bytes(b'not an image')
    out = tmp_path / 'run'
    first = command('amsnet_basicsr.train_folder', str(photos), '--out', str(out), '--quick', '--train-tile', '64',
                    '--quiet', cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert 'skip' in first.stdout and 'notes.png' in first.stdout  # the unreadable file is reported, not fatal
    options = yaml.safe_load((out / 'denoise.yml').read_text())
    assert options['amsnet']['single_pass'] is True and options['network_g']['type'] == 'LocalNAFNet'
    assert options['amsnet']['tile']['overlap'] == 2 * options['network_g']['train_size']  # docs/tiling.md
    assert (out / 'model.pth').is_file()
    train = yaml.safe_load((out / 'train_folder.yml').read_text())['datasets']
    held_out = {path.stem for path in (out / 'data' / 'val_noisy').iterdir()}
    keys = {line.split('.png')[0] for line in open(out / 'data' / 'train_noisy.lmdb' / 'meta_info.txt')}
    assert held_out and keys and not held_out & keys  # the tiles that pick the checkpoint are never trained on
    assert train['val']['type'] == 'SingleImageDataset'  # noisy-only validation: the masked hold-out loss

    denoised = command('amsnet_basicsr.denoise', str(photos / 'trip'), str(tmp_path / 'denoised'), '-opt',
                       str(out / 'denoise.yml'), '--quiet', cwd=tmp_path)
    assert denoised.returncode == 0, denoised.stderr
    assert sorted(p.name for p in (tmp_path / 'denoised').iterdir()) == ['img_0.png', 'img_1.png']

    again = command('amsnet_basicsr.train_folder', str(photos), '--out', str(out), '--quick', cwd=tmp_path)
    assert again.returncode == 2 and 'pass --resume to continue it' in again.stderr.strip().splitlines()[-1]
    resumed = command('amsnet_basicsr.train_folder', str(photos), '--out', str(out), '--quick', '--train-tile', '64',
                      '--resume', '--quiet', cwd=tmp_path)
    assert resumed.returncode == 0 and 'training:' not in resumed.stdout  # finished steps are not repeated
    other = tmp_path / 'not_ours'
    other.mkdir()
    (other / 'keep.txt').write_text('user data')
    refused = command('amsnet_basicsr.train_folder', str(photos), '--out', str(other), '--force', cwd=tmp_path)
    assert refused.returncode == 2 and (other / 'keep.txt').is_file()
    assert first.stderr == '' and resumed.stderr == ''  # a clean run prints its progress on stdout, nothing else


def process_state(pid):
    """'gone', 'zombie' or 'alive' (a container's init may leave a dead child unreaped)."""
    try:
        with open(f'/proc/{pid}/stat') as handle:
            return 'zombie' if handle.read().rsplit(')', 1)[1].split()[0] in 'ZX' else 'alive'
    except FileNotFoundError:
        return 'gone'


def default_sigint():
    """In the command's process: Ctrl-C's default action, as in a terminal. A shell without job control starts
    background jobs (a CI runner's, say) with SIGINT ignored, and the command would inherit that."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.mark.slow
def test_killed_or_interrupted_runs_leave_no_trainer_and_never_share_a_folder(tmp_path, write_noisy_photo):
    """While a run trains, a second run on its folder is refused (the lock, which the train.py child holds too);
    SIGKILL of the command takes its child with it (Linux: PR_SET_PDEATHSIG); Ctrl-C (SIGINT) stops the child and
    prints one line with exit 130."""
    photos = tmp_path / 'photos'
    rng = np.random.default_rng(0)
    for index in range(2):
        write_noisy_photo(photos / f'img_{index}.png', 140, 150, rng)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    arguments = ['amsnet_basicsr.train_folder', str(photos), '--out', str(tmp_path / 'run'), '--quick', '--train-tile',
                 '64', '--iters', '100000', '--quiet']

    def start(*extra):
        process = subprocess.Popen([sys.executable, '-m', *arguments, *extra], cwd=tmp_path, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=default_sigint)
        for line in process.stdout:
            if 'training (pid ' in line:
                return process, int(line.split('training (pid ')[1].split(')')[0])
        raise AssertionError(process.communicate())

    def wait_until_gone(pid):
        deadline = time.time() + 30
        while process_state(pid) == 'alive' and time.time() < deadline:
            time.sleep(0.1)
        return process_state(pid) != 'alive'

    first, child = start()
    second = command(*arguments, '--resume', cwd=tmp_path)
    assert second.returncode == 2 and 'in use by another amsnet-train-folder' in second.stderr, second.stderr
    first.kill()
    first.wait()
    assert wait_until_gone(child)

    interrupted, child = start('--resume')
    interrupted.send_signal(signal.SIGINT)
    _, stderr = interrupted.communicate(timeout=60)
    assert interrupted.returncode == 130 and stderr.strip() == 'amsnet-train-folder: interrupted', stderr
    assert wait_until_gone(child)


def test_the_command_hands_train_py_the_recipe(tmp_path, stand_in_trainer, write_noisy_photo):
    """Without --quick or --iters, amsnet-train-folder trains with recipes.RECIPES['folder']: the options it hands
    train.py build the recipe's denoiser (depth and width) at its learning rate for its iterations, and its
    denoise.yml names that network. train.py is replaced by the stand-in of conftest, so nothing trains and no
    process starts."""
    photos = tmp_path / 'photos'
    rng = np.random.default_rng(0)
    for index in range(2):
        write_noisy_photo(photos / f'img_{index}.png', 140, 140, rng)
    out = tmp_path / 'run'
    train_folder.run(train_folder.parse_args([str(photos), '--out', str(out), '--student-iters', '0', '--quiet']),
                     lambda message: None)
    (options,) = stand_in_trainer
    network = recipes.in_process_model(options, is_train=True).net_g
    convs = [module for module in network.modules() if isinstance(module, torch.nn.Conv2d)]
    recipe = recipes.RECIPES['folder']
    assert len(convs) == recipe['nb'] and convs[0].out_channels == recipe['nc']
    assert options['train']['optim_g']['lr'] == recipe['lr']
    assert options['train']['total_iter'] == recipe['iters']
    assert yaml.safe_load((out / 'denoise.yml').read_text())['network_g'] == options['network_g']
