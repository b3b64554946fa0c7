"""Where a training run is inside its epoch, carried by the sampler and the prefetcher (no global state).

BasicSR 1.4.2 resumes at the start of the saved epoch and replays it. Here:

* the training state saved at iteration i holds ``batches_into_epoch``: the batches of that epoch trained on so
  far, *including* those a previous resume skipped (the counting prefetcher starts from the sampler's skip);
* :func:`amsnet_basicsr.checkpoint.load_resume_state` turns it into ``(epoch, samples per rank)`` and hands it to
  the resumed run's sampler through the training dataset's options (``datasets.train`` is the one object both see);
* :class:`ResumableEnlargedSampler` leaves those samples out of that epoch only, so the resumed run sees exactly
  the batches the uninterrupted run would have seen next, however often it was interrupted.

The prefetcher stamps each batch with ``epoch_batches`` (its position in the epoch); the model keeps the last one
it was fed and saves it with the training state.
"""
from . import basicsr_compat  # noqa: F401  (the torchvision alias, before basicsr is imported)

from basicsr.data.data_sampler import EnlargedSampler  # noqa: E402
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher, PrefetchGenerator  # noqa: E402

RESUME_KEY = 'resume_skip'  # datasets.train[RESUME_KEY] = (epoch, samples per rank), set on resume only
BATCH_POSITION_KEY = 'epoch_batches'


class ResumableEnlargedSampler(EnlargedSampler):
    """BasicSR's sampler; in the epoch a run resumes inside, the samples trained on before the interruption are
    left out, so the resumed run continues the epoch instead of replaying it."""

    def __init__(self, dataset, num_replicas, rank, ratio=1):
        super().__init__(dataset, num_replicas, rank, ratio)
        self.skip = (getattr(dataset, 'opt', None) or {}).get(RESUME_KEY)

    def skipped_samples(self):
        """Samples of the current epoch left out at its start (0 except in the epoch a run resumed inside)."""
        return self.skip[1] if self.skip is not None and self.epoch == self.skip[0] else 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.skipped_samples():])


class _BatchCounter:
    """Counts the batches of the epoch a BasicSR prefetcher hands out, from the batches the sampler skipped."""

    batches = 0

    def _start_of_epoch(self):
        sampler = getattr(self.ori_loader, 'sampler', None)
        skipped = sampler.skipped_samples() if isinstance(sampler, ResumableEnlargedSampler) else 0
        return skipped // max(self.ori_loader.batch_size or 1, 1)

    def next(self):
        batch = super().next()
        if batch is not None:
            self.batches += 1
            batch[BATCH_POSITION_KEY] = self.batches
        return batch

    def reset(self):
        super().reset()
        self.batches = self._start_of_epoch()


class CountingCPUPrefetcher(_BatchCounter, CPUPrefetcher):
    """BasicSR's CPUPrefetcher stamping each batch with its position in the epoch."""


class CountingCUDAPrefetcher(_BatchCounter, CUDAPrefetcher):
    """BasicSR's CUDAPrefetcher stamping each batch with its position in the epoch."""


class SafePrefetchGenerator(PrefetchGenerator):
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
