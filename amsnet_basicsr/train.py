"""Train AMSNet with BasicSR's pipeline, e.g. ``python amsnet_basicsr/train.py -opt options/train_AMSNet_Restormer.yml``.

Flags are BasicSR's: ``-opt``, ``--launcher none|pytorch|slurm``, ``--auto_resume``, ``--debug``, ``--force_yml``.
Several GPUs or machines (DDP; NCCL on GPUs, Gloo on CPUs)::

    torchrun --nproc_per_node=4 amsnet_basicsr/train.py -opt OPT --launcher pytorch [--auto_resume]
    torchrun --nnodes=2 --node_rank=R --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29400 \\
        amsnet_basicsr/train.py -opt OPT --launcher pytorch

BasicSR's ``train_pipeline`` runs unchanged; :func:`install` swaps in, by name and without editing basicsr's
files, the pieces that break outside a single CUDA process:

* ``basicsr.utils.options.init_dist`` -> :func:`amsnet_basicsr.distributed.init_dist` (CPU/GPU-aware);
* ``basicsr.train.parse_options`` -> parse, then :func:`amsnet_basicsr.options_check.check_options` (bad options
  stop before anything is written);
* ``basicsr.train.load_resume_state`` -> :func:`amsnet_basicsr.checkpoint.load_resume_state` (CPU-safe, newest
  complete checkpoint);
* ``basicsr.data.prefetch_dataloader.PrefetchGenerator`` -> :class:`SafePrefetchGenerator` (with
  ``prefetch_mode: cpu`` a data error used to hang the main process forever; now it is raised there);
* ``basicsr.train.EnlargedSampler`` / ``CPUPrefetcher`` / ``CUDAPrefetcher`` -> subclasses that record how far into
  its epoch the run is and let a resumed run continue there (BasicSR replays the whole epoch).

Errors of :mod:`amsnet_basicsr.errors` (bad options, bad images, non-finite loss, unusable checkpoints) end the
run with one line ``amsnet_basicsr/train.py: error: ...`` on stderr and exit status 2, without a traceback.
"""
import contextlib
import os
import sys

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
import basicsr.data.prefetch_dataloader as basicsr_prefetch
import basicsr.train as basicsr_train
from amsnet_basicsr import checkpoint, distributed
from amsnet_basicsr.errors import AMSNetError
from amsnet_basicsr.options_check import check_options
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from basicsr.utils.options import parse_options as basicsr_parse_options

EXIT_BAD_INPUT = 2


class ResumableEnlargedSampler(EnlargedSampler):
    """BasicSR's sampler; in the epoch a run resumes inside, the samples trained on before the interruption are
    left out (``checkpoint.PROGRESS.skip``), so the resumed run continues the epoch instead of replaying it."""

    def __init__(self, dataset, num_replicas, rank, ratio=1):
        super().__init__(dataset, num_replicas, rank, ratio)
        self.skip = checkpoint.PROGRESS.skip

    def __iter__(self):
        indices = list(super().__iter__())
        if self.skip is not None and self.epoch == self.skip[0]:
            indices = indices[self.skip[1]:]
        return iter(indices)


class _BatchCounter:
    """Counts the batches of the epoch a BasicSR prefetcher hands out (saved in training states)."""

    def next(self):
        batch = super().next()
        if batch is not None:
            checkpoint.PROGRESS.batches += 1
        return batch

    def reset(self):
        checkpoint.PROGRESS.batches = 0
        super().reset()


class CountingCPUPrefetcher(_BatchCounter, CPUPrefetcher):
    """BasicSR's CPUPrefetcher counting its batches."""


class CountingCUDAPrefetcher(_BatchCounter, CUDAPrefetcher):
    """BasicSR's CUDAPrefetcher counting its batches."""


class SafePrefetchGenerator(basicsr_prefetch.PrefetchGenerator):
    """BasicSR's prefetch thread, but an exception in the data pipeline reaches the training loop."""

    class _Failure:
        def __init__(self, error):
            self.error = error

    def run(self):
        try:
            for item in self.generator:
                self.queue.put(item)
        except BaseException as error:  # noqa: B036  (re-raised in the consumer thread)
            self.queue.put(self._Failure(error))
            return
        self.queue.put(None)

    def __next__(self):
        item = self.queue.get()
        if item is None:
            raise StopIteration
        if isinstance(item, self._Failure):
            raise item.error
        return item


def parse_and_check_options(root_path, is_train=True):
    """BasicSR's parse_options, then the start-up validation (before experiments/<name> is created or archived)."""
    opt, args = basicsr_parse_options(root_path, is_train=is_train)
    check_options(opt)
    return opt, args


def install():
    """Swap the CPU/DDP/resume-safe pieces into BasicSR's modules (idempotent; basicsr's files stay untouched)."""
    distributed.install()
    basicsr_train.parse_options = parse_and_check_options
    basicsr_train.load_resume_state = checkpoint.load_resume_state
    basicsr_prefetch.PrefetchGenerator = SafePrefetchGenerator
    basicsr_train.EnlargedSampler = ResumableEnlargedSampler
    basicsr_train.CPUPrefetcher = CountingCPUPrefetcher
    basicsr_train.CUDAPrefetcher = CountingCUDAPrefetcher


def _one_line(error):
    """The message of an AMSNet error; for one re-raised from a DataLoader worker, its original message."""
    text = str(error)
    if 'Original Traceback' in text:
        lines = [line for line in text.splitlines() if line.strip()]
        text = lines[-1].split(': ', 1)[-1] if lines else text
    return text


def main():
    install()
    try:
        # BasicSR resolves relative dataset/checkpoint paths and the --auto_resume lookup against the current
        # directory, so the current directory is also the root of experiments/<name>/ and tb_logger/<name>/
        # (the repo root in the README).
        train_pipeline_with_cleanup(os.getcwd())
    except AMSNetError as error:
        message = _one_line(error)
        with contextlib.suppress(Exception):  # the log file is a courtesy; stderr below is what matters
            from basicsr.utils import get_root_logger
            get_root_logger().error(message)
        rank = os.environ.get('RANK')
        prefix = f'[rank {rank}] ' if rank is not None and os.environ.get('WORLD_SIZE', '1') != '1' else ''
        print(f'amsnet_basicsr/train.py: error: {prefix}{message}', file=sys.stderr, flush=True)
        sys.exit(EXIT_BAD_INPUT)


def train_pipeline_with_cleanup(root_path):
    try:
        basicsr_train.train_pipeline(root_path)
    finally:
        if distributed.is_distributed():
            import torch.distributed as dist
            with contextlib.suppress(Exception):
                dist.destroy_process_group()


if __name__ == '__main__':
    main()
