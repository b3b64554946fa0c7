"""DeamNet (Ren et al., "Adaptive Consistency Prior based Deep Network for Image Denoising", CVPR 2021), real-noise
setting, as used by AMSNet's denoiser ablation (paper Tab. 4: 37.80 dB on SIDD val; supplement Tab. 1: 2.228 M).

Structure (DeamNet paper Fig. 2; the authors' ``Deam(Isreal=True)``):

* feature transform: 3x3 conv ``in_nc -> C`` then a residual pair of 3x3 convs (``transform_function``);
* four unrolled iterations of the adaptive consistency prior. Each runs the *same* non-linear optimisation (NLO)
  sub-network ``net2`` -- a 4-level U-Net: per level two 3x3 conv+ReLU and a stride-2 3x3 conv+ReLU; two 3x3 convs
  in the middle; per decoder level a DEAM attention gate on the skip (``attention*``: nearest 2x upsampling + conv,
  a sigmoid weight from the skip and the upsampled feature, blend), then 3x3 conv, upsampling, 1x1 fusion and two
  3x3 convs; a final 3x3 conv and a residual connection -- followed by a DEAM weighting ``line11 .. line44`` that
  blends the iterate with the transformed input: x_t = (1 - delta_t) * NLO(x_{t-1}) + delta_t * y;
* inverse transform: a residual pair of 3x3 convs then a 3x3 conv ``C -> out_nc``.

With C = 64: 2.228 M parameters, matching AMSNet's supplement Tab. 1. That count includes three multi-scale convs
(3x3, 5x5, 7x7) and a 1x1 fusion conv that the authors' NLO sub-network defines but never calls; they are kept,
unused, so the released weights load with ``strict=True``. All module and parameter names follow the authors' code.
Inputs must be multiples of 16 (four stride-2 levels): ``size_multiple``, read by ``amsnet.size_multiple: auto``.
"""
import torch
from torch import nn
from torch.nn import functional as F

from basicsr.utils.registry import ARCH_REGISTRY


def _xavier_conv(in_channels, out_channels, kernel_size, stride=1):
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2)
    nn.init.xavier_normal_(conv.weight)
    return conv


class Conv(nn.Module):
    """A 'same'-padded conv without activation (the authors' ``ConvLayer1``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1):
        super().__init__()
        self.conv2d = _xavier_conv(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        return self.conv2d(x)


class ConvReLU(nn.Module):
    """A 'same'-padded conv followed by ReLU (the authors' ``ConvLayer``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1):
        super().__init__()
        self.block = nn.Sequential(_xavier_conv(in_channels, out_channels, kernel_size, stride), nn.ReLU())

    def forward(self, x):
        return self.block(x)


class UpConv(nn.Module):
    """Nearest-neighbour 2x upsampling then 3x3 conv + ReLU (the authors' ``UpsampleConvLayer``)."""

    def __init__(self, channels):
        super().__init__()
        self.conv2d = ConvReLU(channels, channels, 3)

    def forward(self, x):
        return self.conv2d(F.interpolate(x, scale_factor=2))


class EncoderLevel(nn.Module):
    """``n_conv - 1`` 3x3 conv+ReLU (output kept as the skip), then a stride-2 3x3 conv+ReLU."""

    def __init__(self, channels, n_conv):
        super().__init__()
        self.body = nn.Sequential(*[ConvReLU(channels, channels, 3) for _ in range(n_conv - 1)],
                                  ConvReLU(channels, channels, 3, stride=2))

    def forward(self, x):
        skip = self.body[:-1](x)
        return skip, self.body[-1](skip)


class UpFuse(nn.Module):
    """3x3 conv on the skip, upsampled coarse feature, 1x1 fusion of both (the authors' ``upsample1``)."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = ConvReLU(channels, channels, 3)
        self.ConvTranspose = UpConv(channels)
        self.cat = Conv(2 * channels, channels, 1)

    def forward(self, skip, coarse):
        return self.cat(torch.cat((self.conv1(skip), self.ConvTranspose(coarse)), dim=1))


class DecoderLevel(nn.Module):
    """:class:`UpFuse` then ``n_conv`` 3x3 conv+ReLU (the authors' ``Decoding_block2``)."""

    def __init__(self, channels, n_conv):
        super().__init__()
        self.upsample = UpFuse(channels)
        self.body = nn.Sequential(*[ConvReLU(channels, channels, 3) for _ in range(n_conv)])

    def forward(self, skip, coarse):
        return self.body(self.upsample(skip, coarse))


def _sigmoid_weight(channels, reduction):
    hidden = max(channels // reduction, 1)
    return nn.Sequential(Conv(channels, hidden, 3), nn.ReLU(inplace=True), Conv(hidden, channels, 3), nn.Sigmoid())


class AttentionGate(nn.Module):
    """DEAM gate on a skip connection: w = sigma(f([C(skip), up(g)])); out = (1 - w) * up(g) + w * skip."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        self.conv_du = _sigmoid_weight(channels, reduction)
        self.cat = Conv(2 * channels, channels, 1)
        self.C = Conv(channels, channels, 3)
        self.ConvTranspose = UpConv(channels)

    def forward(self, skip, coarse):
        up = self.ConvTranspose(coarse)
        weight = self.conv_du(self.cat(torch.cat([self.C(skip), up], dim=1)))
        return (1 - weight) * up + weight * skip


class NLOSubnet(nn.Module):
    """The non-linear optimisation sub-network: a 4-level U-Net with DEAM-gated skips and a residual output."""

    def __init__(self, channels, n_conv_in=3, n_conv_out=2, reduction=16):
        super().__init__()
        # Defined by the authors but not used in their forward pass; kept so their weights load strictly.
        self.conv_dila1 = Conv(channels, channels, 3)
        self.conv_dila2 = Conv(channels, channels, 5)
        self.conv_dila3 = Conv(channels, channels, 7)
        self.cat1 = _xavier_conv(3 * channels, channels, 1)
        for level in (3, 2, 1, 0):
            setattr(self, f'e{level}', EncoderLevel(channels, n_conv_in))
        for level in (3, 2, 1, 0):
            setattr(self, f'attention{level}', AttentionGate(channels, reduction))
        self.mid = nn.Sequential(ConvReLU(channels, channels, 3), ConvReLU(channels, channels, 3))
        for level in (3, 2, 1, 0):
            setattr(self, f'de{level}', DecoderLevel(channels, n_conv_out))
        self.final = Conv(channels, channels, 3)

    def forward(self, x):
        skips, feature = [], x
        for level in range(4):
            skip, feature = getattr(self, f'e{level}')(feature)
            skips.append(skip)
        feature = self.mid(feature)
        for level in (3, 2, 1, 0):
            gated = getattr(self, f'attention{level}')(skips[level], feature)
            feature = getattr(self, f'de{level}')(gated, feature)
        return x + self.final(feature)


class SigmoidAttention(nn.Module):
    """conv 3x3 -> ReLU -> conv 3x3 -> sigmoid, channel reduction ``reduction`` (the authors' ``SCA``)."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        self.conv_du = _sigmoid_weight(channels, reduction)

    def forward(self, x):
        return self.conv_du(x)


class ConsistencyWeight(nn.Module):
    """DEAM weight delta_t = sigma(f([C(y), x_t])) between the NLO output x_t and the transformed input y."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        self.cat = Conv(2 * channels, channels, 1)
        self.C = Conv(channels, channels, 3)
        self.weight = SigmoidAttention(channels, reduction)

    def forward(self, x, y):
        return self.weight(self.cat(torch.cat([self.C(y), x], dim=1)))


class FeatureTransform(nn.Module):
    """3x3 conv ``in -> out`` then a residual pair of 3x3 convs (the authors' ``transform_function``)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.ext = Conv(in_channels, out_channels, 3)
        self.pre = nn.Sequential(Conv(out_channels, out_channels, 3), nn.ReLU(inplace=True),
                                 Conv(out_channels, out_channels, 3))

    def forward(self, x):
        y = self.ext(x)
        return y + self.pre(y)


class InverseFeatureTransform(nn.Module):
    """A residual pair of 3x3 convs then a 3x3 conv ``in -> out`` (the authors' ``Inverse_transform_function``)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.ext = Conv(in_channels, out_channels, 3)
        self.pre = nn.Sequential(Conv(in_channels, in_channels, 3), nn.ReLU(inplace=True),
                                 Conv(in_channels, in_channels, 3))

    def forward(self, x):
        return self.ext(x + self.pre(x))


@ARCH_REGISTRY.register()
class DeamNet(nn.Module):
    """DeamNet, real-noise setting (module docstring). ``channels=64`` is the paper's model (2.228 M parameters).

    Args:
        in_nc, out_nc: image channels (3 for real sRGB noise; the authors' grey model uses 1).
        channels: feature channels C (64 in the paper; smaller values for CPU experiments).
        n_conv_in, n_conv_out: convs per encoder / decoder level of the NLO sub-network (3 and 2 in the paper).
        reduction: channel reduction of the sigmoid attention branches (16 in the paper).
    """

    size_multiple = 16  # inputs must be multiples of 2**4: four stride-2 levels in net2 (amsnet.size_multiple: auto)

    def __init__(self, in_nc=3, out_nc=3, channels=64, n_conv_in=3, n_conv_out=2, reduction=16):
        super().__init__()
        self.transform_function = FeatureTransform(in_nc, channels)
        self.inverse_transform_function = InverseFeatureTransform(channels, out_nc)
        for name in ('line11', 'line22', 'line33', 'line44'):
            setattr(self, name, ConsistencyWeight(channels, reduction))
        self.net2 = NLOSubnet(channels, n_conv_in, n_conv_out, reduction)

    def forward(self, x):
        y = self.transform_function(x)
        estimate = y
        for name in ('line11', 'line22', 'line33', 'line44'):
            refined = self.net2(estimate)
            delta = getattr(self, name)(refined, y)
            estimate = (1 - delta) * refined + delta * y
        return self.inverse_transform_function(estimate)
