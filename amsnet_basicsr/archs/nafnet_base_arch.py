"""NAFNetBase: the NAFNet of AMSNet's denoiser ablation (paper Tab. 4, 37.10 dB on SIDD validation).

AMSNet's "NAFNet" is the *baseline* of NAFNet (Chen, Chu, Zhang, Sun, "Simple Baselines for Image Restoration",
ECCV 2022, Sec. 3.2), not the activation-free NAFNet: each block is LayerNorm -> 1x1 conv -> 3x3 depthwise conv
-> GELU -> channel attention (squeeze-and-excitation: global average pool, 1x1 conv to half the channels, ReLU,
1x1 conv back, sigmoid) -> 1x1 conv, added with a learned per-channel scale ``beta``; then LayerNorm -> 1x1 conv
(FFN expansion 2) -> GELU -> 1x1 conv, added with a scale ``gamma``. The U-shaped body (strided 2x2 conv down,
1x1 conv + PixelShuffle up, additive skips, global residual) is NAFNet's.

The module tree and parameter names are those of the authors' ``NAFNetBase`` (``intro``, ``encoders.i.j``,
``downs.i``, ``middle_blks.j``, ``ups.i.0``, ``decoders.i.j``, ``ending``; in a block ``norm1/2``, ``conv1``-``conv5``,
``se.1``, ``se.3``, ``beta``, ``gamma``), so their released AMSNet-NAFNet weights load with ``strict=True``. With
the authors' settings (width 32, encoder blocks [2, 2, 4, 8], 12 middle blocks, decoder blocks [2, 2, 2, 2],
expansions 1 and 2) it has 29.056 M parameters, as in the paper's supplement. Inputs of any size are zero-padded
at the bottom/right to a multiple of ``2 ** len(enc_blk_nums)`` and the output is cropped back.
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channels of an NCHW tensor, with a per-channel affine ``weight``/``bias``."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        variance = (x - mean).pow(2).mean(1, keepdim=True)
        normalised = (x - mean) / torch.sqrt(variance + self.eps)
        return normalised * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class BaselineBlock(nn.Module):
    """NAFNet's baseline block: a GELU / SE-attention spatial branch and a GELU feed-forward branch."""

    def __init__(self, c, DW_Expand=1, FFN_Expand=2):
        super().__init__()
        hidden = c * DW_Expand
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(hidden, hidden // 2, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(hidden // 2, hidden, 1), nn.Sigmoid())
        self.conv3 = nn.Conv2d(hidden, c, 1)
        self.gelu = nn.GELU()
        self.norm2 = LayerNorm2d(c)
        self.conv4 = nn.Conv2d(c, FFN_Expand * c, 1)
        self.conv5 = nn.Conv2d(FFN_Expand * c, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp):
        x = self.gelu(self.conv2(self.conv1(self.norm1(inp))))
        y = inp + self.conv3(x * self.se(x)) * self.beta
        return y + self.conv5(self.gelu(self.conv4(self.norm2(y)))) * self.gamma


@ARCH_REGISTRY.register()
class NAFNetBase(nn.Module):
    """U-shaped NAFNet body of baseline blocks; constructor arguments and defaults follow the authors' class."""

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=(), dec_blk_nums=(), dw_expand=1,
                 ffn_expand=2):
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError(f'enc_blk_nums {list(enc_blk_nums)} and dec_blk_nums {list(dec_blk_nums)} must have '
                             'the same length (one decoder level per encoder level)')
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()

        def stage(channels, count):
            return nn.Sequential(*(BaselineBlock(channels, dw_expand, ffn_expand) for _ in range(count)))

        channels = width
        for count in enc_blk_nums:
            self.encoders.append(stage(channels, count))
            self.downs.append(nn.Conv2d(channels, 2 * channels, 2, stride=2))
            channels *= 2
        self.middle_blks = stage(channels, middle_blk_num)
        for count in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(channels, 2 * channels, 1, bias=False), nn.PixelShuffle(2)))
            channels //= 2
            self.decoders.append(stage(channels, count))
        self.padder_size = 2 ** len(self.encoders)

    @property
    def size_multiple(self):
        """2 ** (encoder levels), one strided 2x2 conv each (``amsnet.size_multiple: auto``): the scheme reflect-pads
        PD sub-images to it, so the zero padding of :meth:`forward` never runs inside the scheme."""
        return self.padder_size

    def forward(self, inp):
        height, width = inp.shape[-2:]
        unit = self.padder_size
        inp = F.pad(inp, (0, -width % unit, 0, -height % unit))
        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = decoder(up(x) + skip)
        return (self.ending(x) + inp)[..., :height, :width]
