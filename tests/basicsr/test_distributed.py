"""2-process DDP training with torchrun on CPU (Gloo): disjoint shards, identical weights, resumed DDP run."""
import os
import re
import subprocess
import sys

import pytest
import torch


def torchrun(probe, option_file, cwd, env, *extra, timeout=240):
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(probe),
               '-opt', str(option_file), '--launcher', 'pytorch', *extra]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f'torchrun failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}'
    return result


def read_lines(path):
    return [line.split() for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_torchrun_two_cpu_ranks_train_disjoint_shards_identical_weights_and_resume(
        tmp_path, noisy_folder, tiny_options, write_options, probe_env, train_probe):
    folder = noisy_folder(8)  # 8 images, 2 ranks x batch 2 -> 2 iterations per epoch
    options = write_options(tmp_path / 'ddp.yml', tiny_options(folder, 'ddp', iters=4, save_freq=2,
                                                               dataset_type='RecordingNoisyImageDataset'))
    first, second = tmp_path / 'probe_1', tmp_path / 'probe_2'

    # Run 1 stops (both ranks, cleanly) right after the checkpoint of iteration 2 = the end of epoch 0.
    torchrun(train_probe, options, tmp_path, probe_env(first, PROBE_STOP_AFTER='2'))
    shards = [[line[0] for line in read_lines(first / f'samples_rank{rank}.txt')] for rank in (0, 1)]
    assert all(len(shard) == 4 for shard in shards), 'each rank reads batch 2 x 2 iterations'
    assert set(shards[0]).isdisjoint(shards[1]), 'the ranks must see disjoint shards'
    assert set(shards[0]) | set(shards[1]) == {str(path) for path in folder.iterdir()}
    weights = [read_lines(first / f'weights_rank{rank}.txt') for rank in (0, 1)]
    assert weights[0][0][:2] == weights[1][0][:2] and weights[0][0][0] == '2', 'DDP weights differ across ranks'
    assert [weights[0][0][2], weights[1][0][2]] == ['0', '1'], 'mask generators must be seeded per rank'
    experiment = tmp_path / 'experiments' / 'ddp'
    assert sorted(p.name for p in (experiment / 'training_states').iterdir()) == ['2.state']
    state = torch.load(experiment / 'training_states' / '2.state', map_location='cpu', weights_only=False)
    assert state['world_size'] == 2 and len(state['rng']) == 2
    assert not torch.equal(state['rng'][0]['mask_generator'], state['rng'][1]['mask_generator'])

    # Run 2: --auto_resume continues both ranks from iteration 2 to total_iter 4.
    result = torchrun(train_probe, options, tmp_path, probe_env(second), '--auto_resume')
    log = '\n'.join(path.read_text() for path in sorted(experiment.glob('train_ddp_*.log')))
    assert 'Resuming training from epoch: 0, iter: 2.' in log, result.stdout[-3000:]
    resumed_iters = re.findall(r'iter:\s+(\d+), lr', log.split('Resuming training')[-1])
    assert resumed_iters == ['3', '4'], 'the resumed run must continue at iteration 3 and stop at total_iter 4'
    weights = [read_lines(second / f'weights_rank{rank}.txt') for rank in (0, 1)]
    assert [line[0] for line in weights[0]] == ['4', '-1']
    assert [line[:2] for line in weights[0]] == [line[:2] for line in weights[1]], 'DDP weights differ after resume'
    # Epoch 0 was complete at iteration 2: the resumed run skips it (BasicSR alone would replay it) and trains
    # iterations 3-4 on epoch 1; after that the loop reads ahead one batch per remaining epoch.
    assert 'Resuming inside epoch 0: its first 2 batch(es) (4 samples per process)' in result.stdout
    assert re.findall(r'epoch:\s+(\d+), iter:\s+[34], lr', log) == ['1', '1']
    resumed = [[line[0] for line in read_lines(second / f'samples_rank{rank}.txt')][:4] for rank in (0, 1)]
    assert all(len(shard) == 4 for shard in resumed) and set(resumed[0]).isdisjoint(resumed[1])
    latest = torch.load(experiment / 'models' / 'net_g_latest.pth', map_location='cpu')['params']
    at_two = torch.load(experiment / 'models' / 'net_g_2.pth', map_location='cpu')['params']
    assert any(not torch.equal(latest[key], at_two[key]) for key in latest), 'the resumed run did not train'


@pytest.mark.slow
def test_slurm_launcher_initialises_gloo_on_cpu(tmp_path, monkeypatch):
    """``--launcher slurm`` keeps BasicSR's SLURM start-up (scontrol for the master address), CPU-aware."""
    import socket

    import torch.distributed as dist

    from amsnet_basicsr import distributed
    scontrol = tmp_path / 'scontrol'
    scontrol.write_text('#!/bin/sh\necho 127.0.0.1\n')
    scontrol.chmod(0o755)
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv('PATH', f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')
    for name, value in {'SLURM_PROCID': '0', 'SLURM_NTASKS': '1', 'SLURM_NODELIST': 'node[1-2]',
                        'SLURM_LOCALID': '0'}.items():
        monkeypatch.setenv(name, value)
    for name in ('MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK', 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    distributed.init_dist('slurm', port=port)
    try:
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
        assert os.environ['MASTER_ADDR'] == '127.0.0.1' and os.environ['MASTER_PORT'] == str(port)
        assert distributed.all_gather_objects({'rank': 0}) == [{'rank': 0}]
    finally:
        dist.destroy_process_group()
