"""LocalNAFNet: spandrel's NAFNet with the test-time local converter (TLC) built in, so its output does not depend
on the inference tile size.

NAFNet's simplified channel attention (SCA) multiplies every feature map by a 1x1 conv of its *global* average
(``AdaptiveAvgPool2d(1)``). Trained on small crops, the network then sees other statistics at test time (a tile, a
whole photo), and a tiled output differs from the whole-image one. Chu, Chen, Chen, Zhang, Sun, "Improving Image
Restoration by Revisiting Global Information Aggregation" (TLC, ECCV 2022) replace the global average at test time
by a local average over a window of the training-crop size.

Here the window is chosen so that the replacement is exact on the training crops: at a level of resolution
``2 ** -level`` the average runs over a ``(2 * n - 1)``-pixel square window clipped to the feature map (the mean of
the pixels inside, ``count_include_pad=False``), with ``n = train_size * 2 ** -level`` the side of a training crop
there (``train_size`` rounded up to NAFNet's padding multiple ``2 ** len(enc_blk_nums)``). On a map of at most ``n``
pixels per side every window covers the whole map, so on every crop no larger than ``train_size`` the network
computes NAFNet's function with NAFNet's gradients (to float rounding; its LayerNorms are fused:
:class:`ChannelLayerNorm`): training is unchanged and NAFNet weights load with
``strict=True`` (same constructor arguments and parameter names, plus ``train_size``). On a larger input every
pixel sees only a bounded neighbourhood, the same in a tile as in the whole image away from the tile's edges.
"""
import torch
import torch.nn.functional as F
from spandrel.architectures.NAFNet import NAFNet
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY


def _box_sum(x, radius, dim):
    """Sums of ``x`` along ``dim`` over the windows [i - radius, i + radius] clipped to the axis, from running sums:
    ``total[min(i + radius, size - 1)] - total[i - radius - 1]``, the latter 0 for i <= radius. No branch on the
    size (an axis shorter than a window gets the whole sum everywhere), so the network exports with dynamic shapes."""
    size = x.shape[dim]
    total = x.cumsum(dim)
    zeros = list(total.shape)
    zeros[dim] = radius + 1
    last = total.narrow(dim, size - 1, 1)
    repeats = [-1] * total.dim()
    repeats[dim] = radius
    padded = torch.cat([total.new_zeros(zeros), total, last.expand(repeats)], dim)
    return padded.narrow(dim, 2 * radius + 1, size) - padded.narrow(dim, 0, size)


def local_mean(x, radius):
    """Mean of ``x`` (N, C, H, W) over the (2 * radius + 1)-pixel square window around every pixel, clipped to the
    map (``F.avg_pool2d(x, 2 * radius + 1, 1, radius, count_include_pad=False)``), in O(1) per pixel: separable
    running sums."""
    sums = _box_sum(_box_sum(x, radius, 3), radius, 2)
    height, width = x.shape[2:]
    rows, cols = torch.arange(height, device=x.device), torch.arange(width, device=x.device)
    counts = [(index + radius + 1).clamp(max=size) - (index - radius).clamp(min=0)
              for index, size in ((rows, height), (cols, width))]
    return sums * (counts[0][:, None] * counts[1][None, :]).to(x.dtype).reciprocal()


class ChannelLayerNorm(nn.Module):
    """NAFNet's ``LayerNorm2d`` (each pixel's channels normalised, then scaled by ``weight`` and shifted by ``bias``)
    as one fused ``F.layer_norm`` over the channels-last view: the same function (to float rounding), parameters and
    names, in one pass over the map instead of spandrel's six (``benchmarks/results/inference_speed.md``, "Memory
    format"). Under ``torch.export`` (``amsnet-export``) it is written out as spandrel's, whose graph keeps the batch
    size dynamic."""

    def __init__(self, channels, *, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        if torch.compiler.is_exporting():
            centred = x - x.mean(1, keepdim=True)
            normalised = centred / (centred.square().mean(1, keepdim=True) + self.eps).sqrt()
            return self.weight.view(1, -1, 1, 1) * normalised + self.bias.view(1, -1, 1, 1)
        return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class LocalAvgPool2d(nn.Module):
    """Drop-in replacement of ``nn.AdaptiveAvgPool2d(1)`` in an SCA: :func:`local_mean` with ``radius``."""

    def __init__(self, radius):
        super().__init__()
        self.radius = radius

    def forward(self, x):
        return local_mean(x, self.radius)

    def extra_repr(self):
        return f'radius={self.radius}'


@ARCH_REGISTRY.register()
class LocalNAFNet(NAFNet):
    """NAFNet whose SCA pools over a local window tied to the training crop ``train_size`` (module docstring; TLC,
    Chu et al. ECCV 2022): equal to ``NAFNet`` with the same weights on inputs of at most ``train_size`` pixels a
    side, local (a bounded receptive field per pooling) on larger ones. Its LayerNorms are :class:`ChannelLayerNorm`
    (NAFNet's, fused)."""

    def __init__(self, *, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=(), dec_blk_nums=(), train_size=64):
        super().__init__(img_channel=img_channel, width=width, middle_blk_num=middle_blk_num,
                         enc_blk_nums=list(enc_blk_nums), dec_blk_nums=list(dec_blk_nums))
        if train_size < 1:
            raise ValueError(f'train_size must be >= 1, got {train_size}')
        crop = -(-train_size // self.padder_size) * self.padder_size  # the training crop as NAFNet pads it
        depth = len(self.encoders)
        levels = ([(blocks, level) for level, blocks in enumerate(self.encoders)] + [(self.middle_blks, depth)]
                  + [(blocks, depth - 1 - index) for index, blocks in enumerate(self.decoders)])
        for blocks, level in levels:
            for block in blocks:
                block.sca[0] = LocalAvgPool2d((crop >> level) - 1)
                block.norm1, block.norm2 = (ChannelLayerNorm(norm.weight.numel(), eps=norm.eps)
                                            for norm in (block.norm1, block.norm2))
