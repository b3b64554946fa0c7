"""The model's validation loop (:class:`ValidationMixin`): BasicSR's metrics, the clean-free ``masked_holdout``,
validation sets without reference images, and benchmark submission files.

One loop serves ``test.py`` and the validation of a training run (BasicSR's ``dist_validation`` calls it on rank 0).
Per batch: ``feed_data``, ``test`` (timed for a submission), the submission collector, the masked hold-out loss,
the output image, the metrics. The metrics of a set are

* BasicSR's registered metrics of ``val.metrics`` (``calculate_psnr``, ...), computed as BasicSR does
  (:func:`basicsr.metrics.calculate_metric` on ``tensor2img`` of the output and the reference);
* ``{type: masked_holdout}`` entries (:mod:`amsnet_basicsr.metrics`): L_m (Eq. 4) of the single-mask training
  forward (Eq. 2-3) on a fixed mask seeded by ``amsnet.seed``, against the noisy input itself -- the model's
  ``masked_holdout_loss(lq)``, computed here, outside the submission's timing; ``better: lower`` is filled in.

On a set without reference images (``has_gt = False``, or no ``gt`` in its first item) the metrics that need one are
left out for that set and the ``masked_holdout`` entries kept -- a default one is added when none is listed, so a
noisy-only validation set is still scored; a model without ``masked_holdout_loss`` (or a single-pass one) skips the
metrics of such a set. Averages, best values (``better``) and the log line are BasicSR's. A set with ``submission:
sidd|dnd`` gets its files (:mod:`amsnet_basicsr.submission`). ``val.metrics`` is read, never changed.
"""
import os.path as osp
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..errors import DataError, OptionError
from ..metrics import HOLDOUT_METRIC
from ..submission import SubmissionCollector, build_submission_collector

from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger, imwrite, tensor2img

Metrics = Dict[str, Dict[str, Any]]  # val.metrics: name -> {type: ..., its arguments}


class ValidationMixin:
    """The validation loop of a BasicSR ``SRModel`` subclass (module docstring), as its first base:
    ``class AMSNetModel(ValidationMixin, SRModel)``. It replaces ``SRModel.nondist_validation`` outright and uses
    BasicSR's ``_update_best_metric_result`` and ``_log_validation_metric_values``."""

    def nondist_validation(self, dataloader: DataLoader, current_iter: Any, tb_logger: Any, save_img: bool) -> None:
        """Validate on ``dataloader``'s set: metrics into ``self.metric_results`` (averaged, best values tracked,
        logged), images saved when ``save_img``, submission files written when the set asks for them."""
        logger = get_root_logger()
        dataset = dataloader.dataset
        name = dataset.opt['name']
        metrics = self._validation_metrics(name, self.opt['val'].get('metrics'), _has_gt(dataset), logger)
        collector = build_submission_collector(dataset, self.opt)
        if metrics is not None:  # SRModel keeps the metric names of its first validation; these are this set's
            self.metric_results = {key: 0 for key in metrics}
            self._initialize_best_metrics(name, metrics)
        count = self._validation_pass(dataloader, name, metrics, collector, current_iter, save_img)
        if metrics is not None:
            if not count:
                raise DataError(f'{name}: the validation set holds no image')
            for key in self.metric_results:
                self.metric_results[key] /= count
                self._update_best_metric_result(name, key, self.metric_results[key], current_iter)
            self._log_validation_metric_values(current_iter, name, tb_logger)
        self._log_validation_outputs(name, save_img, collector, logger)

    def _validation_metrics(self, name: str, metrics: Optional[Metrics], has_gt: bool, logger) -> Optional[Metrics]:
        """The ``val.metrics`` to run on set ``name`` (copies; the options are never changed), or None for none."""
        if metrics is None:
            return None
        holdout = {}
        for key, metric_opt in metrics.items():
            if metric_opt.get('type') == HOLDOUT_METRIC:
                holdout[key] = {**metric_opt, 'better': metric_opt.get('better', 'lower')}
                if holdout[key]['better'] != 'lower':
                    raise OptionError(f"val.metrics.{key}.better must be 'lower' for type {HOLDOUT_METRIC} (a "
                                      f"loss), got {holdout[key]['better']!r}")
        scores_holdout = (hasattr(self, 'masked_holdout_loss')
                          and not getattr(getattr(self, 'scheme_config', None), 'single_pass', False))
        if holdout and not scores_holdout:
            raise OptionError(f'val.metrics: type {HOLDOUT_METRIC} needs a mask-scheme model with masked_holdout_loss '
                              f'(AMSNetModel without amsnet.single_pass), got {type(self).__name__}')
        if has_gt:
            return {key: holdout.get(key, metric_opt) for key, metric_opt in metrics.items()}
        skipped = ', '.join(key for key in metrics if key not in holdout)
        if not scores_holdout:
            logger.info(f'{name} has no reference images: metrics skipped for it.')
            return None
        holdout = holdout or {HOLDOUT_METRIC: {'type': HOLDOUT_METRIC, 'better': 'lower'}}
        logger.info(f'{name} has no reference images: metrics skipped for it. Validating it by '
                    f'{", ".join(holdout)} (masked hold-out loss: L_m on fixed masks, no clean image, lower is '
                    f'better) instead of {skipped or "nothing"}.')
        return holdout

    def _initialize_best_metrics(self, name: str, metrics: Metrics) -> None:
        """BaseModel's ``_initialize_best_metric_results`` for this set's metrics (not ``val.metrics``): a record
        per metric, kept from the set's first validation on."""
        if not hasattr(self, 'best_metric_results'):
            self.best_metric_results = {}
        if name not in self.best_metric_results:
            self.best_metric_results[name] = {
                key: dict(better=metric_opt.get('better', 'higher'), iter=-1,
                          val=float('-inf') if metric_opt.get('better', 'higher') == 'higher' else float('inf'))
                for key, metric_opt in metrics.items()}

    def _validation_pass(self, dataloader: DataLoader, name: str, metrics: Optional[Metrics],
                         collector: Optional[SubmissionCollector], current_iter: Any, save_img: bool) -> int:
        """Every batch of the set through :meth:`_validate_batch`; the metric values are summed into
        ``self.metric_results``. Returns the number of batches."""
        bar = tqdm(total=len(dataloader), unit='image') if self.opt['val'].get('pbar', False) else None
        count = 0
        for data in dataloader:
            count += 1
            image_name = osp.splitext(osp.basename(data['lq_path'][0]))[0]
            image, scores = self._validate_batch(data, metrics, collector)
            if save_img:
                imwrite(image, self._validation_image_path(name, image_name, current_iter))
            for key, value in scores.items():
                self.metric_results[key] += value
            if bar is not None:
                bar.update(1)
                bar.set_description(f'Test {image_name}')
        if bar is not None:
            bar.close()
        return count

    def _validate_batch(self, data: Dict[str, Any], metrics: Optional[Metrics],
                        collector: Optional[SubmissionCollector]) -> Tuple[np.ndarray, Dict[str, float]]:
        """(the output as BasicSR's uint8 image, {metric: value}) of one batch. Only ``test()`` is timed for a
        submission; the hold-out loss is computed after it, on ``self.lq``."""
        self.feed_data(data)
        if collector is not None:
            collector.run_timed(self.test)
            collector.add(data, self.output)
        else:
            self.test()
        holdout = [key for key, metric_opt in (metrics or {}).items() if metric_opt.get('type') == HOLDOUT_METRIC]
        loss = self.masked_holdout_loss(self.lq) if holdout else None
        visuals = self.get_current_visuals()
        metric_data = {'img': tensor2img([visuals['result']])}
        if 'gt' in visuals:
            metric_data['img2'] = tensor2img([visuals['gt']])
            del self.gt
        del self.lq, self.output  # as SRModel: free the device memory before the next batch
        torch.cuda.empty_cache()
        scores = {key: loss if key in holdout else calculate_metric(metric_data, metric_opt)
                  for key, metric_opt in (metrics or {}).items()}
        return metric_data['img'], scores

    def _validation_image_path(self, name: str, image_name: str, current_iter: Any) -> str:
        """Where SRModel saves a validation image: per image and iteration in training, per set in testing
        (suffix ``val.suffix``, else the experiment name)."""
        folder = self.opt['path']['visualization']
        if self.opt['is_train']:
            return osp.join(folder, image_name, f'{image_name}_{current_iter}.png')
        return osp.join(folder, name, f'{image_name}_{self.opt["val"]["suffix"] or self.opt["name"]}.png')

    def _log_validation_outputs(self, name: str, save_img: bool, collector: Optional[SubmissionCollector],
                                logger) -> None:
        """Write the submission files and say where the images and files went."""
        if save_img and not self.opt['is_train']:
            logger.info(f"{name}: images saved to {osp.join(self.opt['path']['visualization'], name)}")
        if collector is not None:
            paths = collector.finalize()
            where = ' and '.join(paths) if collector.kind == 'sidd' else collector.out_dir
            logger.info(f'{name}: {collector.kind.upper()} submission written to {where} ({len(paths)} file(s)); '
                        f'{collector.time_mp:.3f} s per megapixel')


def _has_gt(dataset) -> bool:
    """Whether the set has reference images: its ``has_gt``, else (datasets of BasicSR or other plugins) whether its
    first item has a ``gt``."""
    has_gt = getattr(dataset, 'has_gt', None)
    return 'gt' in dataset[0] if has_gt is None else bool(has_gt)
