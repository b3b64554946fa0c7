"""Crash-safe checkpoints and resume for BasicSR training (``--auto_resume``).

* Every file is written to ``<name>.tmp.<pid>`` in the same folder, flushed to disk, then renamed with
  ``os.replace`` (atomic on POSIX): a process killed at any moment (SIGKILL mid-write included) leaves either the
  previous complete file or an orphan ``*.tmp.*`` that nothing ever loads. ``net_g_<iter>.pth`` is published
  before ``<iter>.state``, so a state on disk always has its network.
* Training states also hold every rank's RNG states (AMSNet's mask generator, torch, CUDA, numpy, random):
  a resumed run continues the random streams instead of replaying those of iteration 0.
* :func:`load_resume_state` replaces ``basicsr.train.load_resume_state``, which needs CUDA and takes the newest
  ``<iter>.state`` blindly: it loads on the CPU and takes the newest state that loads and has its network files.
"""
import glob
import os
import random
import re
import time

import numpy as np
import torch

from . import (
    basicsr_compat,  # noqa: F401  (the torchvision alias, before basicsr is imported)
    files,
)
from .distributed import all_gather_objects, broadcast_object
from .errors import CheckpointError, NonFiniteLossError
from .files import TEMP_MARK
from .progress import RESUME_KEY

from basicsr.utils import get_root_logger
from basicsr.utils.misc import check_resume

STATE_KEYS = ('epoch', 'iter', 'optimizers', 'schedulers')


def atomic_save(obj, path, retries=3):
    """``torch.save(obj, path)`` through :func:`amsnet_basicsr.files.atomic_write` (never a truncated ``path``).

    An OSError (full disk, a network file system hiccup) is retried ``retries`` times, one second apart, as
    BasicSR does; then :class:`CheckpointError` names the file (BasicSR would go on without checkpoints).
    """
    for attempt in range(1, retries + 1):
        try:
            return files.atomic_write(path, lambda handle: torch.save(obj, handle))
        except OSError as error:
            if attempt == retries:
                raise CheckpointError(f'{path}: cannot be written ({error}); the previous checkpoints are '
                                      'intact') from error
            time.sleep(1)


def remove_temp_files(*folders):
    """Delete ``*.tmp.*`` leftovers of killed writes (rank 0, before training starts)."""
    for folder in folders:
        for path in glob.glob(os.path.join(glob.escape(folder), f'*{TEMP_MARK}*')):
            files.remove_quietly(path)


def non_finite_entries(state_dict):
    """Names of floating-point tensors with NaN/Inf entries."""
    return [key for key, value in state_dict.items()
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())]


# ---------------------------------------------------------------------------------------------- RNG states
def capture_rng_state(mask_generator=None):
    """This process's random streams (mask generator, torch CPU/CUDA, numpy, random) as a picklable dict."""
    state = {'torch': torch.get_rng_state(), 'numpy': np.random.get_state(), 'random': random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    if mask_generator is not None:
        state['mask_generator'] = mask_generator.get_state()
    return state


def restore_rng_state(state, mask_generator=None):
    torch.set_rng_state(state['torch'].cpu())
    np.random.set_state(state['numpy'])
    random.setstate(state['random'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'].cpu())
    if mask_generator is not None and 'mask_generator' in state:
        mask_generator.set_state(state['mask_generator'].cpu())


# ---------------------------------------------------------------------------------------------- saving
def save_network(model, net, net_label, current_iter, param_key='params'):
    """BaseModel.save_network, crash-safe and guarded: called on every rank, written by rank 0.

    Raises :class:`NonFiniteLossError` (on every rank: DDP keeps the weights identical) instead of writing
    weights with NaN/Inf, so the newest checkpoint on disk is always the last good one.
    """
    label = 'latest' if current_iter == -1 else current_iter
    path = os.path.join(model.opt['path']['models'], f'{net_label}_{label}.pth')
    nets = net if isinstance(net, list) else [net]
    keys = param_key if isinstance(param_key, list) else [param_key]
    if len(nets) != len(keys):
        raise ValueError('save_network: the lengths of net and param_key differ')
    save_dict = {}
    for net_, key in zip(nets, keys):
        state_dict = model.get_bare_model(net_).state_dict()
        bad = non_finite_entries(state_dict)  # on the device, on every rank (the weights are the same)
        save_dict[key] = {(name[7:] if name.startswith('module.') else name): value.detach()
                          for name, value in state_dict.items()}
        if bad:
            raise NonFiniteLossError(
                f'iteration {current_iter}: {net_label} [{key}] has non-finite weights ({", ".join(bad[:3])}'
                f'{", ..." if len(bad) > 3 else ""}); {path} was NOT written. {last_good_message(model.opt)}')
    if model.opt.get('rank', 0) == 0:
        atomic_save({key: {name: value.cpu() for name, value in params.items()} for key, params in save_dict.items()},
                    path)


def save_training_state(model, epoch, current_iter, mask_generator=None, batches_into_epoch=0):
    """BaseModel.save_training_state plus every rank's RNG states and the position inside the epoch
    (:mod:`amsnet_basicsr.progress`); crash-safe (a collective on all ranks)."""
    if current_iter == -1:
        return
    rng_states = all_gather_objects(capture_rng_state(mask_generator))
    if model.opt.get('rank', 0) != 0:
        return
    state = {'epoch': epoch, 'iter': current_iter,
             'optimizers': [optimizer.state_dict() for optimizer in model.optimizers],
             'schedulers': [scheduler.state_dict() for scheduler in model.schedulers],
             'rng': rng_states, 'world_size': len(rng_states), 'batches_into_epoch': int(batches_into_epoch)}
    atomic_save(state, os.path.join(model.opt['path']['training_states'], f'{current_iter}.state'))


def restore_training_rng(model, resume_state, mask_generator=None):
    """Give this rank its saved RNG states; with another world size (or an old state) re-seed per rank instead."""
    rng_states = resume_state.get('rng')
    rank = model.opt.get('rank', 0)
    if rng_states and len(rng_states) == model.opt.get('world_size', 1):
        restore_rng_state(rng_states[rank], mask_generator)
        return True
    seed = (model.opt.get('manual_seed') or 0) + rank + 1000003 * int(resume_state['iter'])
    get_root_logger().warning(
        f'Resume state holds RNG states for {len(rng_states or [])} rank(s), this run has '
        f'{model.opt.get("world_size", 1)}: random streams re-seeded from manual_seed, rank and iteration.')
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    if mask_generator is not None:
        mask_generator.manual_seed(seed)
    return False


# ---------------------------------------------------------------------------------------------- resuming
def _state_iteration(name):
    match = re.fullmatch(r'(\d+)\.state', name)
    return int(match.group(1)) if match else None


def network_labels(opt):
    """``g`` for ``network_g`` etc., minus ``path.ignore_resume_networks`` (BasicSR's check_resume rule)."""
    ignored = opt['path'].get('ignore_resume_networks') or []
    return [key.replace('network_', '') for key in opt if key.startswith('network_') and key not in ignored]


def _load_state(path):
    state = torch.load(path, map_location='cpu', weights_only=False)
    if not isinstance(state, dict) or any(key not in state for key in STATE_KEYS):
        raise CheckpointError(f'{path}: not a BasicSR training state (needs keys {", ".join(STATE_KEYS)})')
    return state


def _say(message):
    # Runs before train_pipeline sets up its log file: get_root_logger() here would stop that file from being
    # attached, so print (as basicsr's check_resume does).
    print(f'WARNING: {message}', flush=True)


def newest_complete_state(opt):
    """(path, state) of the newest ``training_states/<iter>.state`` that loads and whose networks exist."""
    state_dir = opt['path']['training_states']
    if not os.path.isdir(state_dir):
        return None, None
    candidates = sorted(((_state_iteration(name), name) for name in os.listdir(state_dir)
                         if _state_iteration(name) is not None), reverse=True)
    for iteration, name in candidates:
        path = os.path.join(state_dir, name)
        missing = [os.path.join(opt['path']['models'], f'net_{label}_{iteration}.pth') for label in network_labels(opt)]
        missing = [net_path for net_path in missing if not os.path.isfile(net_path)]
        if missing:
            _say(f'Skipping {path} for resume: {missing[0]} is missing.')
            continue
        try:
            state = _load_state(path)
            for label in network_labels(opt):
                torch.load(os.path.join(opt['path']['models'], f'net_{label}_{iteration}.pth'), map_location='cpu',
                           weights_only=True)
        except Exception as error:  # a truncated or foreign file: fall back to the previous checkpoint
            _say(f'Skipping {path} for resume: it does not load ({type(error).__name__}: {error}).')
            continue
        if int(state['iter']) != iteration:
            _say(f'Skipping {path} for resume: it holds iteration {state["iter"]}.')
            continue
        return path, state
    return None, None


def load_resume_state(opt):
    """Replacement for ``basicsr.train.load_resume_state`` (CPU-safe; skips truncated/incomplete states).

    ``--auto_resume``: the newest complete state of ``experiments/<name>/training_states`` (rank 0 decides and
    tells the other ranks, so all ranks resume from the same iteration). ``path.resume_state``: that file, or an
    error naming it. Tensors are loaded on the CPU; the optimisers move them to the parameters' device.
    """
    if opt.get('auto_resume'):
        path = None
        if opt.get('rank', 0) == 0:
            remove_temp_files(opt['path']['training_states'], opt['path']['models'])
            path, _ = newest_complete_state(opt)
        path = broadcast_object(path)
        if path is None:
            return None
        opt['path']['resume_state'] = path
    elif opt['path'].get('resume_state'):
        path = opt['path']['resume_state']
        if not os.path.isfile(path):
            raise CheckpointError(f'path.resume_state: {path} does not exist')
    else:
        return None
    try:
        state = _load_state(path)
    except CheckpointError:
        raise
    except Exception as error:
        raise CheckpointError(f'path.resume_state: {path} does not load ({type(error).__name__}: {error}); '
                              'use --auto_resume to take the newest complete state') from error
    check_resume(opt, state['iter'])
    _plan_skip(opt, state)
    return state


def _plan_skip(opt, state):
    """Tell the resumed run's sampler (through ``datasets.train``, see :mod:`amsnet_basicsr.progress`) how many
    samples of the saved epoch this rank already trained on."""
    batches = int(state.get('batches_into_epoch', 0))
    train = (opt.get('datasets') or {}).get('train')
    if not isinstance(train, dict):
        return
    train.pop(RESUME_KEY, None)
    if batches <= 0 or 'batch_size_per_gpu' not in train:
        return
    if state.get('world_size', 1) != opt.get('world_size', 1):
        _say(f'the state was saved by {state.get("world_size", 1)} process(es), this run has '
             f'{opt.get("world_size", 1)}: epoch {state["epoch"]} restarts from its first batch.')
        return
    per_rank = train['batch_size_per_gpu'] * (1 if opt.get('dist') else max(int(opt.get('num_gpu') or 0), 1))
    train[RESUME_KEY] = (int(state['epoch']), batches * per_rank)
    print(f'Resuming inside epoch {state["epoch"]}: its first {batches} batch(es) ({batches * per_rank} samples '
          'per process) were already trained on and are skipped.', flush=True)


def last_good_message(opt):
    """'Last complete checkpoint: ...' for error messages (what --auto_resume would pick up)."""
    try:
        state_dir = opt['path']['training_states']
        iterations = sorted((_state_iteration(name) for name in os.listdir(state_dir)
                             if _state_iteration(name) is not None), reverse=True)
    except (KeyError, OSError):
        iterations = []
    if not iterations:
        return 'No checkpoint was saved before this point.'
    return (f'The last complete checkpoint is iteration {iterations[0]} '
            f'({os.path.join(state_dir, f"{iterations[0]}.state")}); lower the learning rate and resume with '
            '--auto_resume.')
