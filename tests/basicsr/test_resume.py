"""SIGKILL during training and during a checkpoint write, then --auto_resume to the configured total_iter."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import checkpoint

from helpers import TINY_NET

from basicsr.archs import build_network


def start_probe(probe, option_file, cwd, env, *extra):
    return subprocess.Popen([sys.executable, str(probe), '-opt', str(option_file), *extra], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, process, timeout=120):
    deadline = time.time() + timeout
    while not predicate():
        assert process.poll() is None, f'training ended before the kill point:\n{process.stderr.read()[-3000:]}'
        assert time.time() < deadline, 'kill point not reached in time'
        time.sleep(0.02)


def sigkill(process):
    assert process.poll() is None, 'the process must still be running when it is killed'
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def resumed_from(experiment):
    log = '\n'.join(path.read_text() for path in sorted(experiment.glob('train_*.log')))
    match = re.findall(r'Resuming training from epoch: \d+, iter: (\d+)\.', log)
    return int(match[-1]) if match else None, log


def assert_final_model_loads(experiment):
    network = build_network(dict(TINY_NET))
    network.load_state_dict(torch.load(experiment / 'models' / 'net_g_latest.pth', map_location='cpu')['params'])


@pytest.mark.slow
def test_sigkill_mid_training_then_auto_resume_reaches_total_iter(tmp_path, noisy_folder, tiny_options, write_options,
                                                                  train_probe, probe_env, run_train):
    folder = noisy_folder(4)
    total = 80
    options = tiny_options(folder, 'killed', iters=total, save_freq=5)
    option_file = write_options(tmp_path / 'killed.yml', options)
    experiment = tmp_path / 'experiments' / 'killed'
    states = experiment / 'training_states'

    process = start_probe(train_probe, option_file, tmp_path, probe_env(tmp_path / 'probe'))
    wait_for(lambda: (states / '10.state').exists(), process)
    sigkill(process)  # somewhere in iterations 11..(a few checkpoints later), not at a checkpoint boundary
    assert not (experiment / 'models' / 'net_g_latest.pth').exists()
    newest = max(int(path.stem) for path in states.glob('*.state'))
    assert newest < total

    run_train(option_file, tmp_path, '--auto_resume')
    start, log = resumed_from(experiment)
    assert start == newest, f'resumed from {start}, the newest complete checkpoint was {newest}'
    assert re.search(rf'iter:\s+{total:,}, lr', log) and not re.search(rf'iter:\s+{total + 1:,}, lr', log)
    assert (states / f'{total}.state').exists()
    assert not list(experiment.glob('**/*.tmp.*'))
    assert_final_model_loads(experiment)


@pytest.mark.slow
def test_sigkill_during_checkpoint_write_never_leaves_a_file_that_resume_picks_up(
        tmp_path, noisy_folder, tiny_options, write_options, train_probe, probe_env, run_train):
    folder = noisy_folder(4)
    option_file = write_options(tmp_path / 'midsave.yml', tiny_options(folder, 'midsave', iters=8, save_freq=2))
    experiment = tmp_path / 'experiments' / 'midsave'
    states, models, probe = experiment / 'training_states', experiment / 'models', tmp_path / 'probe'

    # The probe pauses between the complete temporary 4.state and its rename; kill it there.
    process = start_probe(train_probe, option_file, tmp_path, probe_env(probe, PROBE_PAUSE_STATE='4:120'))
    wait_for(lambda: (probe / 'pausing').exists(), process)
    sigkill(process)
    assert sorted(path.name for path in states.iterdir() if checkpoint.TEMP_MARK not in path.name) == ['2.state']
    assert [path.name for path in states.iterdir() if checkpoint.TEMP_MARK in path.name], 'no orphan temp file'
    killed_state = torch.load(next(states.glob('4.state.tmp.*')), map_location='cpu', weights_only=False)
    killed_weights = torch.load(models / 'net_g_4.pth', map_location='cpu')['params']  # published before the kill
    # A truncated state (as a non-atomic writer killed mid-write leaves) and a state without its network file:
    # resume must skip both and take the newest complete checkpoint.
    complete = (states / '2.state').read_bytes()
    (states / '7.state').write_bytes(complete[:len(complete) // 2])
    (models / 'net_g_7.pth').write_bytes((models / 'net_g_2.pth').read_bytes())
    (states / '6.state').write_bytes(complete)

    result = run_train(option_file, tmp_path, '--auto_resume')
    assert re.search(r'Skipping \S*7\.state for resume: it does not load', result.stdout), result.stdout[-3000:]
    assert re.search(r'Skipping \S*6\.state for resume: \S*net_g_6\.pth is missing', result.stdout)
    start, log = resumed_from(experiment)
    assert start == 2
    assert re.search(r'iter:\s+8, lr', log) and not re.search(r'iter:\s+9, lr', log)
    assert not [path for path in states.iterdir() if checkpoint.TEMP_MARK in path.name], 'temp files removed'
    assert {'2.state', '4.state', '8.state'} <= {path.name for path in states.iterdir()}
    assert torch.load(states / '8.state', map_location='cpu', weights_only=False)['iter'] == 8
    # The run continued where it was: at iteration 4 the mask generator and Python's `random` (crops, flips) are
    # where the killed run had them (its complete temporary 4.state), and the weights are bit-identical to the
    # killed run's iteration 4, i.e. to an uninterrupted run (same samples, crops, masks, optimiser state).
    resumed_state = torch.load(states / '4.state', map_location='cpu', weights_only=False)
    assert torch.equal(resumed_state['rng'][0]['mask_generator'], killed_state['rng'][0]['mask_generator'])
    assert resumed_state['rng'][0]['random'] == killed_state['rng'][0]['random']
    resumed_weights = torch.load(models / 'net_g_4.pth', map_location='cpu')['params']
    assert all(torch.equal(resumed_weights[key], killed_weights[key]) for key in killed_weights)
    assert_final_model_loads(experiment)


def test_training_state_round_trips_rng_streams(tmp_path):
    """The mask generator and the global RNGs continue after a resume instead of restarting from the seed."""
    import random

    import numpy as np

    generator = torch.Generator().manual_seed(5)
    torch.rand(3, generator=generator)
    saved = checkpoint.capture_rng_state(generator)
    expected = (torch.rand(4, generator=generator), torch.rand(2), np.random.rand(2), random.random())
    fresh = torch.Generator().manual_seed(5)  # what a resumed run starts with before resume_training
    checkpoint.restore_rng_state(saved, fresh)
    again = (torch.rand(4, generator=fresh), torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(expected[0], again[0]) and torch.equal(expected[1], again[1])
    assert np.array_equal(expected[2], again[2]) and expected[3] == again[3]


def test_explicit_resume_state_that_does_not_load_is_refused_naming_it(tmp_path):
    from amsnet_basicsr.errors import CheckpointError
    truncated = tmp_path / '10.state'
    truncated.write_bytes(b'PK\x03\x04' + bytes(20))
    opt = {'auto_resume': False, 'path': {'resume_state': str(truncated)}}
    with pytest.raises(CheckpointError, match=rf'path.resume_state: {re.escape(str(truncated))} does not load'):
        checkpoint.load_resume_state(opt)
    opt['path']['resume_state'] = str(tmp_path / 'missing.state')
    with pytest.raises(CheckpointError, match='missing.state does not exist'):
        checkpoint.load_resume_state(opt)


def test_resume_with_another_world_size_reseeds_per_rank():
    """Saved by 2 ranks, resumed by 1: no rank's stream is reused blindly; the new streams are seeded per rank."""
    import types
    generator = torch.Generator().manual_seed(0)
    state = {'iter': 6, 'rng': [checkpoint.capture_rng_state(generator)] * 2}
    model = types.SimpleNamespace(opt={'rank': 0, 'world_size': 1, 'manual_seed': 3})
    assert checkpoint.restore_training_rng(model, state, generator) is False
    assert generator.initial_seed() == 3 + 0 + 1000003 * 6


@pytest.mark.slow
def test_two_interruptions_inside_one_epoch_resume_bit_identically(tmp_path, noisy_folder, tiny_options, write_options,
                                                                   train_probe, probe_env):
    """One epoch of 6 iterations (12 images, batch 2), checkpoints every 2: stopped after 2 and again after 4 and
    resumed each time, the run reads the same samples and ends with the same weights at 2, 4 and 6 as the
    uninterrupted run (the saved position inside the epoch counts the batches the first resume skipped)."""
    folder = noisy_folder(12)
    runs = {}
    for name, stops in (('straight', []), ('interrupted', ['2', '4'])):
        options = tiny_options(folder, name, iters=6, save_freq=2, dataset_type='RecordingNoisyImageDataset')
        option_file = write_options(tmp_path / f'{name}.yml', options)
        probe = tmp_path / f'probe_{name}'
        for stop in stops + [None]:
            extra = {'PROBE_STOP_AFTER': stop} if stop else {}
            result = subprocess.run([sys.executable, str(train_probe), '-opt', str(option_file), '--auto_resume'],
                                    cwd=tmp_path, env=probe_env(probe, **extra), capture_output=True, text=True,
                                    timeout=240)
            assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = probe
    weights = {name: {line.split()[0]: line.split()[1] for line in (probe / 'weights_rank0.txt').read_text().split('\n')
                      if line} for name, probe in runs.items()}
    assert [weights['interrupted'][step] for step in ('2', '4', '6')] == \
        [weights['straight'][step] for step in ('2', '4', '6')]
    samples = {name: (probe / 'samples_rank0.txt').read_text().split() for name, probe in runs.items()}
    assert samples['interrupted'] == samples['straight'], samples
