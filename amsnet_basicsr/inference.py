"""One inference object: :class:`AMSNetDenoiser`, a trained denoiser with everything its inference needs.

It owns the network (a torch ``nn.Module`` or an ONNX graph of ``amsnet-export`` run by :class:`OnnxDenoiser`),
the scheme (:class:`~amsnet_basicsr.config.SchemeConfig`: MMDB at the test stride, Eq. 6-8, then R^3 when enabled,
or one pass of a single-pass student; its ``size_multiple: auto`` resolved against the network), the image channels
the network takes, the device and the autocast precision, the tiling, and a denoising strength. Called on

* an image array: float RGB or gray (H, W, C) in [0, 1] -> the denoised array of the same shape (float32);
* a tensor: (B, C, H, W) -> (B, C, H, W), on the tensor's device unless ``device`` says otherwise.

Inference is :func:`amsnet_basicsr.tiling.denoise_image` with masks seeded by pixel position
(:class:`~amsnet_basicsr.masks.PositionalMasks` of ``scheme.seed``) and ``scheme.inference_kwargs``: the same weights,
image and settings give the same output in ``amsnet-denoise``, ``test.py`` (``AMSNetModel.test``) and the
distillation teacher (:func:`amsnet_basicsr.distill.teacher_output`), which all call this object.

Channels: a gray image through a 3-channel network is replicated to 3 channels and the output is their mean; a
colour image through a 1-channel network goes through it one channel at a time.

On the CPU a torch network runs as a channels-last (NHWC) copy on channels-last tiles (:func:`channels_last`):
oneDNN's convolutions then run several times faster, the whole student 1.3-1.6x; the network itself is not touched,
so one still training (``AMSNetModel``'s validation) is not changed by it.

``amsnet.low_frequency_anchor`` (the scheme's; off by default) returns the noisy input's local means to the output,
less the noise's own mean at their level (``amsnet.anchor_bias``), before the strength blend
(:func:`anchor_low_frequencies`).

``strength`` in [0, 1] blends the result with the noisy input, ``strength * denoised + (1 - strength) * noisy``
(``torch.lerp``): 1 is the denoiser's output bit for bit, 0 the input itself.

    denoiser = AMSNetDenoiser.from_options('options/test_SIDD.yml', 'net_g.pth', device='cuda', strength=0.8)
    clean = denoiser(noisy_rgb)          # (H, W, 3) float32 in [0, 1]
    student = AMSNetDenoiser.from_onnx('student.onnx')

Anchors: spandrel's ``ImageModelDescriptor`` (channels, size requirements, ``__call__``) and Real-ESRGAN's
``RealESRGANer`` (device, half precision, tiles).
"""
import contextlib
import ctypes
import json
import math
import os
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from . import tiling
from .config import SchemeConfig
from .errors import ImageError, SetupError
from .masks import PositionalMasks
from .scheme import Denoiser
from .tiling import Progress

# autocast dtype by name (``amsnet-denoise --precision``); None: float32, no autocast
PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}

Image = Union[np.ndarray, torch.Tensor]
# glibc's mallopt(3) parameters (<malloc.h>), and the bytes :func:`keep_freed_memory` gives both
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEPT_MEMORY = 1 << 30


def anchor_low_frequencies(noisy: torch.Tensor, denoised: torch.Tensor, *, block: int,
                           bias: Optional[Sequence[Sequence[float]]] = None) -> torch.Tensor:
    """``denoised + L(noisy - denoised - b(noisy))`` for (B, C, H, W) tensors: L takes the means of ``block`` x
    ``block`` blocks (partial blocks at the right and bottom edges: their own pixels) and interpolates them bilinearly
    between the block centres, so the output's local means are the input's; ``bias`` (rows ``(level, R, G, B)``,
    ``amsnet.anchor_bias``; a 1-channel image takes the channels' mean) is the noise's mean b at each level, linear
    between the levels and flat beyond, looked up at each block's mean (0 without it). L(noisy - clean) is then the
    noise's deviation from its mean averaged over ~block^2 pixels (a fraction of a grey level); a denoiser's own shift
    of the means -- a colour cast it learned from other photos -- is removed whatever its cause. A constant shift ``c``
    of the denoiser's output is removed exactly: ``L(noisy - clean - c) = L(noisy - clean) - c``."""
    noisy = noisy.to(denoised.device, denoised.dtype)
    height, width = noisy.shape[-2:]
    means = torch.nn.functional.avg_pool2d(noisy - denoised, block, ceil_mode=True)
    if bias is not None:
        means = means - piecewise_linear(torch.nn.functional.avg_pool2d(noisy, block, ceil_mode=True), bias)
    low = torch.nn.functional.interpolate(means, scale_factor=block, mode='bilinear', align_corners=False)
    return denoised + low[..., :height, :width]


def piecewise_linear(level: torch.Tensor, rows: Sequence[Sequence[float]]) -> torch.Tensor:
    """The values of ``rows`` (``(level, R, G, B)``, levels increasing) at the per-channel ``level`` (B, C, h, w):
    linear between the rows' levels, flat beyond; a 1-channel ``level`` takes the mean of the channels' values."""
    table = torch.tensor(rows, dtype=level.dtype, device=level.device)
    levels, values = table[:, 0].contiguous(), table[:, 1:]
    if level.shape[1] == 1:
        values = values.mean(1, keepdim=True)
    elif level.shape[1] != values.shape[1]:
        raise ImageError(f'amsnet.anchor_bias has {values.shape[1]} channels, the image {level.shape[1]}')
    level = level.clamp(levels[0], levels[-1]).contiguous()
    upper = torch.bucketize(level, levels).clamp(min=1, max=max(len(levels) - 1, 1)) if len(levels) > 1 else \
        torch.zeros_like(level, dtype=torch.long)
    lower = (upper - 1).clamp(min=0)
    span = (levels[upper] - levels[lower]).clamp(min=torch.finfo(level.dtype).tiny)
    weight = ((level - levels[lower]) / span).clamp(0, 1)
    channel = torch.arange(values.shape[1], device=values.device).view(1, -1, 1, 1)
    return torch.lerp(values[lower, channel], values[upper, channel], weight)


def channels_last(net: torch.nn.Module) -> Denoiser:
    """A channels-last (NHWC) copy of ``net`` called on channels-last copies of its inputs: oneDNN then runs the
    convolutions in NHWC, the same function in less time on the CPU (``benchmarks/results/inference_speed.md``,
    "Memory format"). ``net`` itself is not changed (it may be a network in training)."""
    copy = deepcopy(net).to(memory_format=torch.channels_last)
    return lambda tensor: copy(tensor.contiguous(memory_format=torch.channels_last))


def keep_freed_memory() -> bool:
    """Let glibc's malloc hand freed feature maps to the next layer instead of back to the system, for a process that
    denoises photos on the CPU (``amsnet-denoise`` calls it first). By default an allocation above a dynamic
    threshold (at most 32 MiB: a 512-px tile's widest maps are 32 MiB, a larger tile's more) is a fresh ``mmap``
    whose every page the kernel faults in and zeroes, on every layer, and free heap is given back above twice the
    threshold; here allocations up to :data:`KEPT_MEMORY` (1 GiB) come from the heap and as much free heap is kept.
    The process's memory then stays at its peak until it exits. PyTorch's CPU performance guide gets the same from
    jemalloc or tcmalloc preloaded; ``benchmarks/results/inference_speed.md``, "Freed memory kept, and a 768-px tile",
    has the measurement.
    Returns whether both settings took; False, changing nothing, where the C library is not glibc (macOS, Windows,
    musl, whose ``mallopt`` does nothing)."""
    try:
        libc = ctypes.CDLL(None)
        mallopt, _ = libc.mallopt, libc.gnu_get_libc_version  # the latter only glibc has
    except (OSError, AttributeError, TypeError):
        return False
    return all(mallopt(parameter, ctypes.c_int(KEPT_MEMORY)) for parameter in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD))


def check_strength(strength: float) -> float:
    """``strength`` as a float; ``ValueError`` unless it is a number in [0, 1]."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not (
            math.isfinite(strength) and 0.0 <= strength <= 1.0):
        raise ValueError(f'strength must be a number in [0, 1], got {strength!r}')
    return float(strength)


def overlay(section: Optional[Mapping], overrides: Optional[Mapping]) -> dict:
    """An ``amsnet:`` section with ``overrides`` written over it: a key whose value is a mapping (``tile``, ``r3``)
    is merged one level deep (``{'tile': {'size': 0}}`` keeps ``tile.overlap``); ``None`` values are kept."""
    merged = {key: dict(value) if isinstance(value, Mapping) else value for key, value in (section or {}).items()}
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping):
            nested = merged.get(key)
            merged[key] = {**(nested if isinstance(nested, Mapping) else {}), **value}
        else:
            merged[key] = value
    return merged


# ------------------------------------------------------------------------------------- exported networks (ONNX)
SIDECAR_SUFFIX = '.json'
FORMAT = 'amsnet-basicsr single-pass denoiser'


def sidecar_path(onnx_path: Union[str, os.PathLike]) -> Path:
    """The JSON sidecar of an exported graph: ``<file>.onnx.json`` (its descriptor: channels, size multiple, ...)."""
    return Path(str(onnx_path) + SIDECAR_SUFFIX)


def onnxruntime_module() -> Any:
    """The ``onnxruntime`` module (an optional dependency), or a :class:`SetupError` saying how to install it."""
    try:
        import onnxruntime
    except ImportError as error:
        raise SetupError('onnxruntime is not installed: pip install "amsnet_basicsr[onnx]"') from error
    return onnxruntime


class OnnxDenoiser:
    """An exported single-pass denoiser run with onnxruntime: ``denoiser(tensor) -> tensor`` (CPU float32), so
    :func:`amsnet_basicsr.tiling.denoise_image` tiles it like a torch network. ``info`` is its sidecar (written by
    :func:`amsnet_basicsr.export.export`). Wrapped with its inference settings by :meth:`AMSNetDenoiser.from_onnx`."""

    def __init__(self, path: Union[str, os.PathLike], *, device: str = 'cpu') -> None:
        ort = onnxruntime_module()
        path = Path(path)
        sidecar = sidecar_path(path)
        try:
            self.info = json.loads(sidecar.read_text(encoding='utf-8'))
        except (OSError, ValueError) as error:
            raise SetupError(f'{path}: cannot read its sidecar {sidecar.name} (written by amsnet-export): '
                             f'{error}') from error
        if not isinstance(self.info, dict) or self.info.get('format') != FORMAT:
            raise SetupError(f'{sidecar}: not an amsnet-export sidecar')
        providers = ['CPUExecutionProvider']
        if device == 'cuda' and 'CUDAExecutionProvider' in ort.get_available_providers():
            providers.insert(0, 'CUDAExecutionProvider')
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as error:  # onnxruntime raises its own exception types for unreadable graphs
            raise SetupError(f'{path}: not a loadable ONNX model: {str(error).splitlines()[0]}') from error
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise SetupError(f'{path}: expected one (N, C, H, W) input, found '
                             f'{[(item.name, item.shape) for item in inputs]}')
        self.input_name = inputs[0].name

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        array = tensor.detach().to('cpu', torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])


@dataclass(frozen=True)
class ModelSource:
    """Where a torch denoiser came from: the options it was built from, its checkpoint and parameter key (what
    test-time adaptation, :func:`amsnet_basicsr.models.adaptation.adapted`, rebuilds the trainable model from)."""
    options: Mapping
    checkpoint: str
    param_key: str = 'auto'


@dataclass
class AMSNetDenoiser:
    """A trained denoiser and its inference settings (module docstring); call it on an image array or a tensor.

    Args:
        net: the denoiser D_E (``nn.Module`` in eval mode) or an :class:`OnnxDenoiser` (an exported graph).
        scheme: the ``amsnet:`` section; ``size_multiple: auto`` is resolved against ``net`` here.
        channels: image channels ``net`` takes (1 or 3 for the channel handling; any other must match the input).
        device: where the tiles run; None: on the input's device.
        precision: autocast dtype around the network (``torch.bfloat16`` / ``torch.float16``); None: none.
        strength: denoising strength in [0, 1] (1: the denoiser's output, 0: the noisy input).
        source: options/checkpoint of a torch network (:meth:`from_options`), for test-time adaptation
            (:func:`amsnet_basicsr.models.adaptation.adapted`).
    """
    net: Denoiser = field(repr=False)
    scheme: SchemeConfig
    channels: int = 3
    device: Optional[torch.device] = None
    precision: Optional[torch.dtype] = None
    strength: float = 1.0
    source: Optional[ModelSource] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.strength = check_strength(self.strength)
        if self.device is not None:
            self.device = torch.device(self.device)
        self.scheme = self.scheme.resolved(self.net)

    # ------------------------------------------------------------------------------------------- constructors
    @classmethod
    def from_options(cls, options: Union[Mapping, str, os.PathLike],
                     checkpoint: Union[str, os.PathLike, None] = None, *, param_key: str = 'auto',
                     device: Union[str, torch.device] = 'cpu', precision: Union[str, torch.dtype, None] = None,
                     overrides: Optional[Mapping] = None, strength: float = 1.0) -> 'AMSNetDenoiser':
        """``network_g`` of an options file (a path, or the parsed dict) with the weights of ``checkpoint``
        (default: ``path.pretrain_network_g``; ``param_key`` params, params_ema or auto =
        ``path.param_key_g``), its ``amsnet:`` section with ``overrides`` written over it (:func:`overlay`),
        on ``device``, under autocast to ``precision`` (a dtype or fp32 / bf16 / fp16).

        Errors: :class:`SetupError` (options file, weights) and :class:`~amsnet_basicsr.errors.OptionError`
        (network or scheme options, naming the key), network first."""
        from .networks import build_denoiser, load_options, model_channels, options_checkpoint
        check_strength(strength)
        options_path = None
        if not isinstance(options, Mapping):
            options_path = os.fspath(options)
            options = load_options(options_path)
        if checkpoint is None:
            checkpoint = (options_checkpoint(options, options_path) if options_path is not None
                          else (options.get('path') or {}).get('pretrain_network_g'))
            if not checkpoint:
                raise SetupError('no weights: pass a checkpoint or set path.pretrain_network_g'
                                 + (f' in {options_path}' if options_path else ''))
        if isinstance(precision, str):
            if precision not in PRECISIONS:
                raise SetupError(f'precision {precision!r}: expected one of {", ".join(PRECISIONS)}')
            precision = PRECISIONS[precision]
        net = build_denoiser(options, checkpoint, param_key, device)
        scheme = SchemeConfig.from_section(overlay(options.get('amsnet'), overrides))
        return cls(net, scheme, channels=model_channels(net, options.get('network_g')), device=torch.device(device),
                   precision=precision, strength=strength, source=ModelSource(options, str(checkpoint), param_key))

    @classmethod
    def from_onnx(cls, path: Union[str, os.PathLike], *, tile: Optional[Mapping] = None,
                  device: Union[str, torch.device] = 'cpu', overrides: Optional[Mapping] = None,
                  strength: float = 1.0) -> 'AMSNetDenoiser':
        """A single-pass network exported by ``amsnet-export``, run with onnxruntime (float32, tensors on the CPU;
        ``device`` cuda uses onnxruntime's CUDA provider when it has one). Its sidecar gives the channels and size
        multiple, and the tiling it was exported with; ``tile`` (an ``amsnet.tile`` mapping) and ``overrides`` replace
        it."""
        check_strength(strength)
        net = OnnxDenoiser(path, device=str(torch.device(device).type))
        tile = tile if tile is not None else net.info.get('tile')  # the sidecar's tiles (amsnet-export records them)
        section = {'single_pass': True, 'size_multiple': net.info['size_multiple'],
                   **({'tile': tile} if tile is not None else {}),
                   **{key: net.info[key] for key in ('low_frequency_anchor', 'anchor_bias') if net.info.get(key)}}
        return cls(net, SchemeConfig.from_section(overlay(section, overrides)), channels=net.info['channels'],
                   device=torch.device('cpu'), precision=None, strength=strength)

    # ------------------------------------------------------------------------------------------- inference
    def __call__(self, image: Image, *, progress: Progress = None) -> Image:
        """Denoise an image array ((H, W, C) float in [0, 1]) or a (B, C, H, W) tensor; ``progress`` is called with
        the number of tiles finished after every tile batch."""
        if isinstance(image, torch.Tensor):
            return self.denoise_tensor(image, progress=progress)
        if isinstance(image, np.ndarray):
            return self.denoise_array(image, progress=progress)
        raise TypeError(f'expected a numpy array (H, W, C) or a tensor (B, C, H, W), got {type(image).__name__}')

    def denoise_array(self, image: np.ndarray, *, progress: Progress = None) -> np.ndarray:
        """Float RGB/gray (H, W, C) in [0, 1] -> the denoised float32 array of the same shape (:meth:`check_size`
        first)."""
        if image.ndim != 3:
            raise ImageError(f'expected an (H, W, C) image, got shape {image.shape}')
        self.check_size(image.shape[0], image.shape[1])
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        return self.denoise_tensor(tensor, progress=progress)[0].permute(1, 2, 0).float().numpy()

    def denoise_tensor(self, noisy: torch.Tensor, *, progress: Progress = None) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W): the scheme (or the single pass) tile by tile, channels handled, then the
        strength blend."""
        batch, channels, height, width = noisy.shape
        tensor = noisy
        if channels == 1 and self.channels == 3:
            tensor = tensor.expand(-1, 3, -1, -1)
        elif channels == 3 and self.channels == 1:
            tensor = tensor.reshape(batch * 3, 1, height, width)
        elif channels != self.channels:
            raise ImageError(f'a {channels}-channel image cannot go through a {self.channels}-channel model')
        device_type = (self.device or noisy.device).type
        autocast = (torch.autocast(device_type=device_type, dtype=self.precision) if self.precision is not None
                    else contextlib.nullcontext())
        net = (channels_last(self.net) if device_type == 'cpu' and isinstance(self.net, torch.nn.Module)
               else self.net)
        with autocast:
            output = tiling.denoise_image(net, tensor.contiguous(), masks=PositionalMasks(self.scheme.seed),
                                          **self.scheme.inference_kwargs(device_type), device=self.device,
                                          progress=progress)
        if channels == 1 and self.channels == 3:
            output = output.mean(1, keepdim=True)
        elif channels == 3 and self.channels == 1:
            output = output.reshape(batch, 3, height, width)
        if self.scheme.low_frequency_anchor:
            output = anchor_low_frequencies(noisy, output, block=self.scheme.low_frequency_anchor,
                                            bias=self.scheme.anchor_bias)
        return self.blend(noisy, output.contiguous())

    def blend(self, noisy: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
        """``strength * denoised + (1 - strength) * noisy`` (exact at both ends: ``denoised`` itself at 1)."""
        if self.strength == 1.0:
            return denoised
        return torch.lerp(noisy.to(denoised.device, denoised.dtype), denoised, self.strength)

    # ------------------------------------------------------------------------------------------- geometry
    def check_size(self, height: int, width: int) -> None:
        """Refuse an image that the mask scheme cannot denoise: both sides shorter than twice the PD stride s.

        A blind-spot prediction comes from the other pixels of the masked pixel's PD sub-image. With a side of at
        least 2s, rows (or columns) p and p + s of every phase p lie in the image, so every sub-image holds two
        distinct pixels. With both sides shorter that is not guaranteed: at s = 2 every sub-image of a 1x1 or 2x2
        image, and the centre's of a 3x3, holds mirror copies of one pixel, which share its mask (the tile canvas is
        reflect-padded), so where it is masked nothing is left to predict it from and the output is the network's
        answer to an all-masked input (a grey 1x1 photo came out black). A single-pass network takes any size.
        """
        if self.scheme.single_pass:
            return
        stride = self.scheme.inference_stride
        if max(height, width) < 2 * stride:
            raise ImageError(f'a {height}x{width} photo is too small for the mask scheme at PD stride {stride} '
                             f'(it needs at least {2 * stride} pixels on one side)')

    def tile_count(self, height: int, width: int) -> int:
        """Tiles (denoiser batches of the tile plan) one call on a (height, width) image runs: x 8 with the
        self-ensemble (a rotated image has as many tiles)."""
        tile, scheme = self.scheme.tile, self.scheme
        grid = (scheme.size_multiple, 1) if scheme.single_pass else (scheme.inference_stride, scheme.size_multiple)
        plan = tiling.plan_tiles(height, width, tile.size, tile.overlap, *grid)  # as tiling.denoise_image plans
        return tiling.num_tiles(plan) * (8 if self.scheme.self_ensemble else 1)
