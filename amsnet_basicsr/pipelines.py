"""``train.py`` and ``test.py``: BasicSR's own pipelines with the plugin registered, the compatibility patches of
:mod:`amsnet_basicsr.basicsr_compat` installed and the errors of :mod:`amsnet_basicsr.errors` reported as one line
with exit status 2 (options, datasets, images and checkpoints are checked at start-up, before anything is
written)."""
import contextlib
import logging
import os
import sys

from . import (
    basicsr_compat,
    checkpoint,
    distributed,
    options_check,
    plugin,  # noqa: F401  (registers AMSNet into BasicSR)
    progress,
)
from .errors import AMSNetError, describe_os_error, one_line, report, report_interrupt


def install_patches():
    """:func:`amsnet_basicsr.basicsr_compat.install` with this package's replacements."""
    basicsr_compat.install(init_dist=distributed.init_dist, parse_options=options_check.parse_and_check_options,
                           load_resume_state=checkpoint.load_resume_state,
                           prefetch_generator=progress.SafePrefetchGenerator, sampler=progress.ResumableEnlargedSampler,
                           cpu_prefetcher=progress.CountingCPUPrefetcher,
                           cuda_prefetcher=progress.CountingCUDAPrefetcher)


def log_to_file(level, message):
    """Add ``message`` to the run's log file, if BasicSR opened one. Only there: BasicSR's root logger also writes to
    stderr, where :func:`run` prints the message itself, once. Written directly, so that a full disk does not make
    logging print a traceback of its own."""
    logger = logging.getLogger('basicsr')
    record = logger.makeRecord(logger.name, level, __file__, 0, message, None, None)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            with contextlib.suppress(OSError, ValueError):  # full disk, closed file: stderr still gets the line
                handler.stream.write(handler.format(record) + handler.terminator)
                handler.flush()


def run(pipeline, command):
    """Run ``pipeline(root)`` with the current directory as BasicSR's root; return the exit status.

    BasicSR resolves relative dataset/checkpoint paths and the ``--auto_resume`` lookup against the current
    directory, so it is also the root of ``experiments/``, ``tb_logger/`` and ``results/``.
    An AMSNet error or a file system error (an unwritable ``experiments/``, a full disk) is one line on stderr and
    exit status 2, Ctrl-C one line and 130 (:mod:`amsnet_basicsr.errors`); both also go to the log file.
    """
    install_patches()
    try:
        pipeline(os.getcwd())
    except (AMSNetError, OSError) as error:
        message = describe_os_error(error) if isinstance(error, OSError) else one_line(error)
        log_to_file(logging.ERROR, message)
        rank = os.environ.get('RANK')
        prefix = f'[rank {rank}] ' if rank is not None and os.environ.get('WORLD_SIZE', '1') != '1' else ''
        return report(command, f'{prefix}{message}')
    except KeyboardInterrupt:
        log_to_file(logging.WARNING, 'interrupted')
        return report_interrupt(command)
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
