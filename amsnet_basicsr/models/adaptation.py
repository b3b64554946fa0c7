"""Test-time adaptation (``amsnet-denoise --adapt N``): N self-supervised training steps of the model on the one
noisy photo it is about to denoise (:func:`adapted`: an :class:`~amsnet_basicsr.inference.AMSNetDenoiser` in, one
with the adapted network out).

It trains, so it lives with the model: a fresh ``AMSNetModel`` built with BasicSR's ``build_model`` from the
options of :func:`amsnet_basicsr.recipes.adaptation_options` (stage ``mask``: one random mask at
``amsnet.train_stride`` and L_m, Eq. 2-4; Adam at ``lr``, constant) takes its own training steps on random crops
of the photo. Nothing but the photo itself is read.
"""
import dataclasses
import time
from typing import Any, Callable, Mapping, Optional

import numpy as np
import torch
from torch import nn

from ..errors import ImageError, SetupError
from ..inference import AMSNetDenoiser

ADAPT_CROP, ADAPT_BATCH = 64, 8
Log = Optional[Callable[[str], Any]]


def adapted(denoiser: AMSNetDenoiser, photo: np.ndarray, *, steps: int, lr: float = 1e-3,
            log: Log = None) -> AMSNetDenoiser:
    """``denoiser`` with its network replaced by one fine-tuned on ``photo`` alone (:func:`adapt_network` from the
    denoiser's options and checkpoint, its ``amsnet.seed``, on its device); ``denoiser`` itself is left as it was,
    so every photo adapts from the same loaded weights."""
    source = denoiser.source
    if source is None:
        raise SetupError('test-time adaptation needs the torch model (options and .pth), not an exported .onnx')
    if denoiser.scheme.single_pass:
        raise SetupError('test-time adaptation trains with the mask scheme; a single-pass network '
                         '(amsnet.single_pass) cannot adapt this way')
    if photo.shape[2] != denoiser.channels:
        raise ImageError(f'--adapt needs a {denoiser.channels}-channel photo, got {photo.shape[2]} channels')
    param_key = source.param_key
    if param_key == 'auto':
        param_key = (source.options.get('path') or {}).get('param_key_g') or 'params'
    net = adapt_network(photo, source.options, checkpoint=source.checkpoint, param_key=param_key, steps=steps, lr=lr,
                        seed=denoiser.scheme.seed, device=denoiser.device or torch.device('cpu'), log=log)
    return dataclasses.replace(denoiser, net=net)


def adapt_network(photo: np.ndarray, options: Mapping, *, checkpoint: str, param_key: str, steps: int, lr: float,
                  seed: int, device: torch.device, log: Log = None) -> nn.Module:
    """``network_g`` of ``options`` loaded from ``checkpoint`` (``param_key``) after ``steps`` training steps of
    stage ``mask`` on random ``ADAPT_CROP``-px crops of ``photo`` (float (H, W, C) in [0, 1]; a smaller photo:
    crops of its short side), in batches of ``ADAPT_BATCH`` drawn from a generator seeded with ``seed``; in eval
    mode. Every call starts from the checkpoint, so the same photo and seed give the same network."""
    from ..recipes import adaptation_options

    from basicsr.models import build_model
    height, width, _ = photo.shape
    crop = min(ADAPT_CROP, height, width)
    model = build_model(adaptation_options(options, checkpoint=checkpoint, param_key=param_key, steps=steps, lr=lr,
                                           seed=seed, device_type=torch.device(device).type))
    tensor = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        tops = torch.randint(height - crop + 1, (ADAPT_BATCH, ), generator=generator).tolist()
        lefts = torch.randint(width - crop + 1, (ADAPT_BATCH, ), generator=generator).tolist()
        model.feed_data({'lq': torch.stack([tensor[:, top:top + crop, left:left + crop]
                                            for top, left in zip(tops, lefts)])})
        model.optimize_parameters(step)
    if log is not None:
        log(f'adapted for {steps} steps in {time.perf_counter() - start:.1f} s '
            f'(last L_m {model.log_dict["l_mask"]:.4f})')
    return model.net_g.eval()
