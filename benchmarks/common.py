"""What the research scripts share and the package does not ship: their in-process training loop and speed probe,
and their scoring of (key, noisy, clean) blocks.

* :func:`train_in_process`: the body of BasicSR's training loop on an iterable of batches (ablation, checkpoint
  ranking);
* :func:`steps_per_second`: a model's training speed, from its own ``optimize_parameters`` (ablation's CPU budget);
* :func:`denoiser_from_state`: the product's inference object (:class:`~amsnet_basicsr.inference.AMSNetDenoiser`,
  what ``amsnet-denoise`` runs) for a ``train.py`` options dict and in-memory weights;
* :func:`score_blocks`: a denoiser's (an ``AMSNetDenoiser``'s) outputs on blocks, quantised and scored as BasicSR
  does; :func:`evaluate`: the same through a BasicSR model's own ``test()``, for a model whose inference is not
  AMSNet's (the ablation's AP-BSN). On an ``AMSNetModel`` the two give the same bytes (``benchmarks/tests``).

The options builders and image helpers they use are the product's (:mod:`amsnet_basicsr.recipes`).
"""
import os
import tempfile
import time
from typing import Callable, Iterable, Mapping, Optional

import numpy as np
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR; must precede the basicsr imports)
from amsnet_basicsr.inference import AMSNetDenoiser
from amsnet_basicsr.recipes import scores, to_tensor, to_uint8

from basicsr.models.base_model import BaseModel
from basicsr.utils import tensor2img

Blocks = Iterable[tuple[str, np.ndarray, np.ndarray]]


def train_in_process(model: BaseModel, batches: Iterable[Mapping], *, warmup_iter: int = -1,
                     after_step: Optional[Callable[[int], None]] = None) -> None:
    """The body of BasicSR's training loop on an iterable of ``feed_data`` dicts: the learning-rate update, then the
    model's own ``optimize_parameters``; ``after_step(iteration)`` is called after each step."""
    for iteration, batch in enumerate(batches, start=1):
        model.update_learning_rate(iteration, warmup_iter=warmup_iter)
        model.feed_data(batch)
        model.optimize_parameters(iteration)
        if after_step is not None:
            after_step(iteration)


def steps_per_second(model: BaseModel, batch: torch.Tensor, *, steps: int = 12, warmup: int = 2,
                     clock: Callable[[], float] = time.perf_counter) -> float:
    """Training speed of ``model`` on ``batch``: the median time of its own ``optimize_parameters`` (the steps
    after ``warmup``), measured with ``clock``. The model is trained by these steps: use a throwaway one."""
    model.feed_data({'lq': batch})
    timings = []
    for step in range(1, steps + 1):
        start = clock()
        model.optimize_parameters(step)
        if step > warmup:
            timings.append(clock() - start)
    return 1.0 / float(np.median(timings))


def denoiser_from_state(options: Mapping, state_dict: Mapping, *, overrides: Optional[Mapping] = None
                        ) -> AMSNetDenoiser:
    """``AMSNetDenoiser.from_options(options, checkpoint)`` on the CPU, the checkpoint holding ``state_dict`` (the
    weights of ``network_g``) as ``params``; ``overrides`` are written over ``options['amsnet']`` (e.g.
    ``{'r3': {'enabled': True}}``). The checkpoint is a temporary file, gone when this returns."""
    with tempfile.TemporaryDirectory(prefix='amsnet_bench_') as folder:
        checkpoint = os.path.join(folder, 'net_g.pth')
        torch.save({'params': dict(state_dict)}, checkpoint)
        return AMSNetDenoiser.from_options(options, checkpoint, param_key='params', overrides=overrides)


def _scored(key: str, noisy: np.ndarray, clean: np.ndarray, denoised: np.ndarray) -> dict:
    clean8 = to_uint8(clean)
    psnr, ssim = scores(denoised, clean8)
    return dict(key=key, noisy=to_uint8(noisy), clean=clean8, denoised=denoised, psnr=psnr, ssim=ssim)


def score_blocks(denoiser: Callable[[np.ndarray], np.ndarray], blocks: Blocks) -> list[dict]:
    """Denoise every (key, noisy, clean) block (float RGB in [0, 1], taken as float32) with ``denoiser`` (an
    :class:`~amsnet_basicsr.inference.AMSNetDenoiser`: float RGB -> float RGB); returns, per block, the uint8 BGR
    images (``basicsr.utils.tensor2img``) and the PSNR/SSIM of the output to the clean block."""
    return [_scored(key, noisy, clean, to_uint8(denoiser(np.ascontiguousarray(noisy, dtype=np.float32))))
            for key, noisy, clean in blocks]


def evaluate(model: BaseModel, blocks: Blocks) -> list[dict]:
    """:func:`score_blocks` through the BasicSR model's own inference (``feed_data`` and ``test()``): for a model
    whose inference is not ``AMSNetDenoiser``'s (``APBSNModel``: AP-BSN's PD and R^3 with the network)."""
    results = []
    for key, noisy, clean in blocks:
        model.feed_data({'lq': to_tensor(noisy)})
        model.test()
        results.append(_scored(key, noisy, clean, tensor2img(model.output)))
    return results
