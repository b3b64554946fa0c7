"""``train.py`` and ``test.py``: BasicSR's own pipelines with the plugin registered, the compatibility patches of
:mod:`amsnet_basicsr.basicsr_compat` installed and the errors of :mod:`amsnet_basicsr.errors` reported as one line
with exit status 2 (options, datasets, images and checkpoints are checked at start-up, before anything is
written)."""
import contextlib
import os
import sys

from . import plugin  # noqa: F401  (registers AMSNet into BasicSR)
from . import basicsr_compat, checkpoint, distributed, options_check, progress
from .errors import AMSNetError, one_line, report


def install_patches():
    """:func:`amsnet_basicsr.basicsr_compat.install` with this package's replacements."""
    basicsr_compat.install(init_dist=distributed.init_dist, parse_options=options_check.parse_and_check_options,
                           load_resume_state=checkpoint.load_resume_state,
                           prefetch_generator=progress.SafePrefetchGenerator, sampler=progress.ResumableEnlargedSampler,
                           cpu_prefetcher=progress.CountingCPUPrefetcher, cuda_prefetcher=progress.CountingCUDAPrefetcher)


def run(pipeline, command):
    """Run ``pipeline(root)`` with the current directory as BasicSR's root; return the exit status.

    BasicSR resolves relative dataset/checkpoint paths and the ``--auto_resume`` lookup against the current
    directory, so it is also the root of ``experiments/``, ``tb_logger/`` and ``results/``.
    """
    install_patches()
    try:
        pipeline(os.getcwd())
    except AMSNetError as error:
        with contextlib.suppress(Exception):  # the log file is a courtesy; stderr is what matters
            from basicsr.utils import get_root_logger
            get_root_logger().error(one_line(error))
        rank = os.environ.get('RANK')
        prefix = f'[rank {rank}] ' if rank is not None and os.environ.get('WORLD_SIZE', '1') != '1' else ''
        return report(command, f'{prefix}{one_line(error)}')
    finally:
        if distributed.is_distributed():
            import torch.distributed as dist
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
    return 0


def train_main():
    from basicsr.train import train_pipeline
    sys.exit(run(train_pipeline, 'amsnet_basicsr/train.py'))


def test_main():
    from basicsr.test import test_pipeline
    sys.exit(run(test_pipeline, 'amsnet_basicsr/test.py'))
