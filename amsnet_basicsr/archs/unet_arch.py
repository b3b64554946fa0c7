"""The plain U-Net denoiser of AMSNet's denoiser ablation (paper Tab. 4).

The Noise2Noise U-Net (Lehtinen et al., ICML 2018) without a blind spot, as in the authors' code: five
(conv, max-pool) levels of ``n_feature`` channels, transposed-conv upsampling with skip concatenation,
LeakyReLU(0.2), 1x1 output convs. Parameter names follow the authors' module so their released weights
load; with ``n_feature=128`` it has 7.9 M parameters. Inputs must be multiples of 32 (``size_multiple``, read by
``amsnet.size_multiple: auto``).
"""
import torch
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY


class UpsampleCat(nn.Module):
    """2x transposed-conv upsampling followed by concatenation with the skip feature."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, 2, 2)

    def forward(self, x, skip):
        return torch.cat([self.deconv(x), skip], dim=1)


@ARCH_REGISTRY.register()
class UNet(nn.Module):

    size_multiple = 32  # inputs must be multiples of 2**5: five 2x max-pools (amsnet.size_multiple: auto)

    def __init__(self, in_nc=3, out_nc=3, n_feature=128):
        super().__init__()
        f = n_feature
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.enc_conv0 = nn.Conv2d(in_nc, f, 3, 1, 1)
        for level in range(1, 7):
            setattr(self, f'enc_conv{level}', nn.Conv2d(f, f, 3, 1, 1))
        self.up5 = UpsampleCat(f, f)
        self.dec_conv5a = nn.Conv2d(2 * f, 2 * f, 3, 1, 1)
        self.dec_conv5b = nn.Conv2d(2 * f, 2 * f, 3, 1, 1)
        for level in (4, 3, 2):
            setattr(self, f'up{level}', UpsampleCat(2 * f, 2 * f))
            setattr(self, f'dec_conv{level}a', nn.Conv2d(3 * f, 2 * f, 3, 1, 1))
            setattr(self, f'dec_conv{level}b', nn.Conv2d(2 * f, 2 * f, 3, 1, 1))
        self.up1 = UpsampleCat(2 * f, 2 * f)
        self.dec_conv1a = nn.Conv2d(2 * f + in_nc, 96, 3, 1, 1)
        self.dec_conv1b = nn.Conv2d(96, 96, 3, 1, 1)
        self.nin_a = nn.Conv2d(96, 96, 1)
        self.nin_b = nn.Conv2d(96, 96, 1)
        self.nin_c = nn.Conv2d(96, out_nc, 1)

    def forward(self, x):
        skips = [x]
        feature = self.act(self.enc_conv0(x))
        for level in range(1, 6):
            feature = self.pool(self.act(getattr(self, f'enc_conv{level}')(feature)))
            skips.append(feature)
        feature = self.act(self.enc_conv6(skips.pop()))
        for level in (5, 4, 3, 2):
            feature = getattr(self, f'up{level}')(feature, skips.pop())
            feature = self.act(getattr(self, f'dec_conv{level}a')(feature))
            feature = self.act(getattr(self, f'dec_conv{level}b')(feature))
        feature = self.up1(feature, skips.pop())
        for layer in (self.dec_conv1a, self.dec_conv1b, self.nin_a, self.nin_b):
            feature = self.act(layer(feature))
        return self.nin_c(feature)
