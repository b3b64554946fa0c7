"""Distributed start-up for ``torchrun`` / SLURM that works on GPUs (NCCL) and on CPUs (Gloo).

BasicSR 1.4.2's ``basicsr.utils.dist_util.init_dist`` hard-codes NCCL, calls ``torch.cuda.set_device`` (a
ZeroDivisionError without GPUs) and switches multiprocessing to 'spawn' (every CPU DataLoader worker then
re-imports torch and basicsr: ~100x slower epochs). :func:`amsnet_basicsr.basicsr_compat.install` replaces the
name that ``basicsr.utils.options.parse_options`` calls with :func:`init_dist`; basicsr's files are not modified.
"""
import os
import subprocess

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def default_backend():
    """NCCL when CUDA devices are visible, Gloo otherwise (CPU training)."""
    return 'nccl' if torch.cuda.is_available() and torch.cuda.device_count() > 0 else 'gloo'


def init_dist(launcher, backend=None, **kwargs):
    """Drop-in for ``basicsr.utils.dist_util.init_dist``: ``launcher`` is ``pytorch`` (torchrun) or ``slurm``.

    ``backend`` (``dist_params.backend`` in the options for SLURM, or env ``AMSNET_DIST_BACKEND``) defaults to
    NCCL on GPUs and Gloo on CPUs. Each process binds to GPU ``LOCAL_RANK`` (not ``RANK % gpus``, which is wrong
    when nodes have different GPU counts). 'spawn' is set only with CUDA, as BasicSR does; CPU runs keep 'fork'.
    """
    backend = backend or os.environ.get('AMSNET_DIST_BACKEND') or default_backend()
    if backend == 'nccl' and mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    if launcher == 'pytorch':
        _init_dist_pytorch(backend, **kwargs)
    elif launcher == 'slurm':
        _init_dist_slurm(backend, **kwargs)
    else:
        raise ValueError(f'--launcher: {launcher!r} is not one of none, pytorch, slurm')


def _bind_device(local_rank, backend):
    if backend == 'nccl':
        num_gpus = torch.cuda.device_count()
        torch.cuda.set_device(local_rank % num_gpus)


def _init_dist_pytorch(backend, **kwargs):
    """torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (also across nodes)."""
    missing = [name for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if name not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher pytorch: environment variables {", ".join(missing)} are not set; start the '
                           'run with `torchrun --nproc_per_node=N amsnet_basicsr/train.py -opt ... --launcher pytorch`')
    local_rank = int(os.environ.get('LOCAL_RANK', os.environ['RANK']))
    _bind_device(local_rank, backend)
    dist.init_process_group(backend=backend, **kwargs)


def _init_dist_slurm(backend, port=None):
    """BasicSR's SLURM start-up (MASTER_ADDR from ``scontrol``, MASTER_PORT from ``port``/env/29500), CPU-aware."""
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    if 'SLURM_LOCALID' in os.environ:
        local_rank = int(os.environ['SLURM_LOCALID'])
    else:
        local_rank = proc_id % max(torch.cuda.device_count(), 1)
    _bind_device(local_rank, backend)
    addr = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    elif 'MASTER_PORT' not in os.environ:
        os.environ['MASTER_PORT'] = '29500'  # torch.distributed's default port
    os.environ['MASTER_ADDR'] = addr
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['LOCAL_RANK'] = str(local_rank)
    os.environ['RANK'] = str(proc_id)
    dist.init_process_group(backend=backend)


def is_distributed():
    return dist.is_available() and dist.is_initialized()


def all_gather_objects(obj):
    """``[obj of rank 0, obj of rank 1, ...]``; ``[obj]`` without a process group (a collective: call on all ranks)."""
    if not is_distributed():
        return [obj]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj, src=0):
    """Rank ``src``'s ``obj`` on every rank (a collective: call on all ranks)."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]
