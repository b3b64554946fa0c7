"""Per-step guards of the training step: losses averaged over ranks on every rank, and a stop on NaN/Inf."""
import math

import torch

from .checkpoint import last_good_message
from .distributed import is_distributed
from .errors import NonFiniteLossError


def check_finite_log(log_dict, current_iter, opt):
    """Stop on a NaN/Inf loss. ``log_dict`` holds Python floats (already synchronised), so this costs nothing."""
    bad = {name: value for name, value in log_dict.items() if not math.isfinite(value)}
    if bad:
        values = ', '.join(f'{name} = {value}' for name, value in bad.items())
        raise NonFiniteLossError(f'iteration {current_iter}: non-finite loss ({values}); training stopped, no '
                                 f'checkpoint of this iteration was written. {last_good_message(opt)}')


def reduce_loss_dict(loss_dict, opt):
    """Loss values averaged over ranks as floats on EVERY rank (BasicSR reduces to rank 0 only).

    One all-reduce and one ``.item()`` per step, as BasicSR's own ``reduce_loss_dict``: every rank then takes
    the same stop decision from :func:`check_finite_log`.
    """
    with torch.no_grad():
        names = list(loss_dict)
        values = torch.stack([loss_dict[name].detach().mean() for name in names])
        if is_distributed():
            torch.distributed.all_reduce(values)
            values = values / torch.distributed.get_world_size()
        return dict(zip(names, values.tolist()))
