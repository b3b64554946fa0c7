"""MaskAwareDnCNN: a small, fast-converging denoiser D_E for CPU demos of the mask scheme.

AMSNet feeds its denoiser PD sub-images in which the masked pixels are set to 0 (Eq. 5-7). A plain CNN
(DnCNN, U-Net) has to discover from scratch that those zeros are missing values and learn to inpaint them;
on a CPU that takes far longer than a few minutes. This network is told the obvious instead,
in the spirit of partial convolutions (Liu et al., "Image Inpainting for Irregular Holes Using Partial
Convolutions", ECCV 2018):

* ``valid`` = the pixel is not exactly zero in all channels (the scheme's masked pixels are);
* ``base`` = the pixel itself where valid, else the mean of its valid 3x3 neighbours (normalised convolution);
* output = ``base`` + a DnCNN-style residual body (``nb`` 3x3 conv layers of ``nc`` channels, LeakyReLU(0.1),
  no BN) applied to ``[x, valid, base]``. The last conv is zero-initialised, so the untrained network is the
  neighbour average and training only has to learn a correction. (With plain ReLU and a zero-initialised
  output layer the body often died within the first steps and never learned; LeakyReLU avoids that.)

It is still an ordinary image-to-image network: it never sees a masked pixel's own value (the scheme zeroes
it before the call), so the blind-spot property of MMDB (``dI_DN[p]/dI_N[p] = 0``) holds unchanged. A pixel
that is truly black in every channel is treated as missing and replaced by its neighbours' mean, which is
harmless in the dark, clipped regions where such pixels occur. Any input size works (no size multiple).
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class MaskAwareDnCNN(nn.Module):

    size_multiple = 1  # no downsampling: any input size (amsnet.size_multiple: auto)

    def __init__(self, in_nc=3, out_nc=3, nc=16, nb=4, negative_slope=0.1):
        super().__init__()
        if in_nc != out_nc:
            raise ValueError(f'MaskAwareDnCNN: in_nc ({in_nc}) must equal out_nc ({out_nc})')
        if nb < 2:
            raise ValueError(f'MaskAwareDnCNN: nb (conv layers) must be >= 2, got {nb}')
        layers = [nn.Conv2d(2 * in_nc + 1, nc, 3, 1, 1), nn.LeakyReLU(negative_slope, inplace=True)]
        for _ in range(nb - 2):
            layers += [nn.Conv2d(nc, nc, 3, 1, 1), nn.LeakyReLU(negative_slope, inplace=True)]
        layers.append(nn.Conv2d(nc, out_nc, 3, 1, 1))
        self.body = nn.Sequential(*layers)
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)

    @staticmethod
    def masked_base(x):
        """(valid, base): the non-zero indicator and the image with its zeroed pixels filled by their valid
        3x3 neighbours' mean (the pixel stays 0 where no neighbour is valid)."""
        channels = x.shape[1]
        valid = (x != 0).any(1, keepdim=True).to(x.dtype)
        ones = x.new_ones(1, 1, 3, 3)
        total = F.conv2d(F.pad(x * valid, (1, 1, 1, 1), mode='replicate'), ones.repeat(channels, 1, 1, 1),
                         groups=channels)
        count = F.conv2d(F.pad(valid, (1, 1, 1, 1), mode='replicate'), ones)
        base = torch.where(valid > 0, x, total / count.clamp_min(1.0))
        return valid, base

    def forward(self, x):
        valid, base = self.masked_base(x)
        return base + self.body(torch.cat([x, valid, base], dim=1))
