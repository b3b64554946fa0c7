"""The AP-BSN comparison of the ablation (benchmarks/ablation.py): AP-BSN's scheme (``APBSNModel``) and its blind-spot
network D-BSN (``DBSNl``, D_A, and the unrestricted D_AS of AMSNet Tab. 3). Research, not the product: importing
this module registers ``DBSNl`` into BasicSR's ARCH_REGISTRY and ``APBSNModel`` into its MODEL_REGISTRY, so a
script imports it (``import apbsn``) before it builds either by name.

**APBSNModel**: the AP-BSN scheme (Lee et al., CVPR 2022) around a blind-spot network, for AMSNet's comparisons.

AMSNet's identity-mapping ablation (paper Tab. 3, supplement Sec. 1.8) trains the same denoiser under both schemes:

* AP-BSN -- training: PD at ``amsnet.train_stride`` (5), the network on every sub-image, P^-1, plain L1 to the noisy
  input (no mask). Only a blind-spot network (D-BSN, ``DBSNl``) keeps this from learning the identity; with an
  unrestricted network (``DBSNl`` with ``unrestricted: true``, D_AS) it collapses towards the noisy input.
  Inference: PD at ``amsnet.test_stride`` (2), then, when ``amsnet.r3.enabled``, R^3 with the network itself at
  s = 1 (AP-BSN's original inference uses R^3: T = 8, p = 0.16).
* AMSNet -- :class:`~amsnet_basicsr.models.amsnet_model.AMSNetModel` (masks instead of a blind spot).

Options are those of AMSNetModel (``amsnet:`` section; ``num_branches`` and ``masks_per_pixel`` are unused here);
the loss is BasicSR's ``L1Loss`` (``train.pixel_opt`` may leave out its ``type``); ``train.stage`` must be absent or
``apbsn``.

**DBSNl**: D-BSN, the blind-spot network D_A of AP-BSN, and its "unrestricted" variant D_AS (AMSNet Table 3).

AP-BSN (Lee et al., CVPR 2022) uses a light version of the dilated blind-spot network of Wu et al. (ECCV 2020);
AMSNet's supplement (Sec. 1.8, Fig. 10) reproduces it as D_A:

* head: 1x1 conv ``in_ch -> base_ch`` (128), ReLU;
* two branches, for dilation d = 2 and d = 3: a centre-masked conv of size (2d-1)x(2d-1) (3x3 / 5x5), two 1x1
  convs, ``num_module`` (9) residual blocks ``x + conv1x1(ReLU(conv3x3_dilation_d(x)))``, a 1x1 conv (ReLUs between);
* tail: 1x1 convs ``2*base_ch -> base_ch -> base_ch/2 -> base_ch/2 -> out_ch`` (256->128->64->64->3).

3.66 M parameters with the defaults. Why it is blind: the centre-masked conv reaches offsets in [-(d-1), d-1]^2
without (0, 0), so every offset it reaches has a coordinate that is not a multiple of d; the dilated 3x3 convs and
the 1x1 convs only add multiples of d, so no path returns to the centre: dy[p]/dx[p] = 0 (zero padding keeps this at
the borders too). ``unrestricted=True`` gives D_AS of the AMSNet ablation: the dilated convs become plain 3x3 convs
(dilation 1, same parameter count), so offsets +1 and -1 cancel and the pixel leaks back into its own output.

Module and parameter names follow AP-BSN's ``DBSNl`` (``head``, ``branch1``, ``branch2``, ``tail``, the masked conv's
``mask`` buffer), so AP-BSN's released D-BSN weights load with ``strict=True`` once their ``bsn.`` prefix is removed.
"""
import torch
from torch import nn
from torch.nn import functional as F

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR; must precede the basicsr imports)
from amsnet_basicsr import scheme
from amsnet_basicsr.masks import PixelCoords, PositionalMasks
from amsnet_basicsr.models.amsnet_model import AMSNetModel

from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY


class CentralMaskedConv2d(nn.Conv2d):
    """A conv whose kernel centre is fixed at zero: the output at p never reads the input at p.

    The mask is applied in the forward pass (``weight * mask``), so the stored weight is never modified and the
    gradient with respect to the centre weight is zero.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        mask = torch.ones_like(self.weight)
        kernel_h, kernel_w = self.weight.shape[-2:]
        mask[..., kernel_h // 2, kernel_w // 2] = 0
        self.register_buffer('mask', mask)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding, self.dilation, self.groups)


class DilatedResidualBlock(nn.Module):
    """``x + conv1x1(ReLU(conv3x3(x)))`` with the 3x3 conv dilated by ``dilation`` (AP-BSN's ``DCl``)."""

    def __init__(self, dilation, channels):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=3, padding=dilation, dilation=dilation),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=1))

    def forward(self, x):
        return x + self.body(x)


class BlindSpotBranch(nn.Module):
    """One branch of D-BSN (AP-BSN's ``DC_branchl``): centre-masked conv, then dilated residual blocks.

    ``block_dilation`` is the dilation of the residual blocks' 3x3 convs: ``dilation`` in D_A, 1 in D_AS.
    """

    def __init__(self, dilation, channels, num_module, block_dilation=None):
        super().__init__()
        block_dilation = dilation if block_dilation is None else block_dilation
        layers = [CentralMaskedConv2d(channels, channels, kernel_size=2 * dilation - 1, padding=dilation - 1),
                  nn.ReLU(inplace=True),
                  nn.Conv2d(channels, channels, kernel_size=1), nn.ReLU(inplace=True),
                  nn.Conv2d(channels, channels, kernel_size=1), nn.ReLU(inplace=True)]
        layers += [DilatedResidualBlock(block_dilation, channels) for _ in range(num_module)]
        layers += [nn.Conv2d(channels, channels, kernel_size=1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


@ARCH_REGISTRY.register()
class DBSNl(nn.Module):
    """D-BSN of AP-BSN (D_A), or with ``unrestricted=True`` the ablation's D_AS (module docstring).

    Args:
        in_ch, out_ch: image channels (3 for sRGB).
        base_ch: feature channels (128 in AP-BSN); must be even.
        num_module: residual blocks per branch (9 in AP-BSN).
        unrestricted: replace the dilated 3x3 convs by plain 3x3 convs (D_AS). The centre-masked convs stay, but
            the receptive field now contains the centre pixel again, so the network can learn the identity.
        init: ``'pytorch'`` (PyTorch's default conv initialisation, as AP-BSN) or ``'kaiming'``: Kaiming-normal
            weights for ReLU and zero biases, residual blocks' last conv scaled by 0.3, the output conv by 0.1 with
            bias 0.5 (the untrained network outputs about mid-grey). With PyTorch's default the signal shrinks
            through the ~10 non-residual layers and training from scratch crawls for hundreds of iterations; this
            matters for short CPU runs only (the ablation), not when weights are loaded.
    """

    size_multiple = 1  # no downsampling (dilated and 1x1 convs): any input size (amsnet.size_multiple: auto)

    def __init__(self, in_ch=3, out_ch=3, base_ch=128, num_module=9, unrestricted=False, init='pytorch'):
        super().__init__()
        if base_ch % 2:
            raise ValueError(f'network_g.base_ch must be even, got {base_ch}')
        if init not in ('pytorch', 'kaiming'):
            raise ValueError(f"network_g.init must be 'pytorch' or 'kaiming', got {init!r}")
        self.unrestricted = unrestricted
        self.head = nn.Sequential(nn.Conv2d(in_ch, base_ch, kernel_size=1), nn.ReLU(inplace=True))
        self.branch1 = BlindSpotBranch(2, base_ch, num_module, 1 if unrestricted else 2)
        self.branch2 = BlindSpotBranch(3, base_ch, num_module, 1 if unrestricted else 3)
        half = base_ch // 2
        self.tail = nn.Sequential(
            nn.Conv2d(2 * base_ch, base_ch, kernel_size=1), nn.ReLU(inplace=True),
            nn.Conv2d(base_ch, half, kernel_size=1), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, kernel_size=1), nn.ReLU(inplace=True),
            nn.Conv2d(half, out_ch, kernel_size=1))
        if init == 'kaiming':
            self._kaiming_init()

    def _kaiming_init(self):
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity='relu')
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, DilatedResidualBlock):
                module.body[2].weight.data.mul_(0.3)
        self.tail[-1].weight.data.mul_(0.1)
        self.tail[-1].bias.data.fill_(0.5)

    def forward(self, x):
        features = self.head(x)
        return self.tail(torch.cat([self.branch1(features), self.branch2(features)], dim=1))



def pd_restore(net, noisy, stride, multiple=1, chunk_size=None, chunk_pixels=None):
    """P_s^-1(D(P_s(I_N))): the network on every PD sub-image, no mask (AP-BSN's forward; s = 1: the plain network)."""
    sub_images = scheme.pd_down(noisy, stride, multiple)
    return scheme.pd_up(scheme.run_chunked(net, sub_images, chunk_size=chunk_size, chunk_pixels=chunk_pixels), stride,
                        noisy.shape[-2:])


def apbsn_denoise(net, noisy, masks, *, stride=2, multiple=1, chunk_size=None, chunk_pixels=None, refine_times=0,
                  refine_prob=0.16):
    """AP-BSN inference: the network at the test stride, then R^3 with the network itself at s = 1 (no masks);
    R^3's replacement draws come from the mask source ``masks`` (:mod:`amsnet_basicsr.masks`)."""
    denoised = pd_restore(net, noisy, stride, multiple, chunk_size, chunk_pixels)
    if refine_times > 0:
        batch, _, height, width = noisy.shape
        replace, _ = masks.r3_draws(PixelCoords.whole(batch, height, width, noisy.device), times=refine_times,
                                    num_branches=2, prob=refine_prob)
        denoised = scheme.random_replacement_refinement(
            lambda copies: pd_restore(net, copies, 1, multiple, chunk_size, chunk_pixels), noisy, denoised, replace)
    return denoised


def apbsn_loss(net, noisy, stride, multiple=1):
    """AP-BSN's training loss: || P_s^-1(D(P_s(I_N))) - I_N ||_1 over all pixels (no mask)."""
    return (pd_restore(net, noisy, stride, multiple) - noisy).abs().mean()


@MODEL_REGISTRY.register()
class APBSNModel(AMSNetModel):
    """AP-BSN training and inference around ``network_g`` (module docstring); everything else is AMSNetModel's."""

    STAGE_LOSSES = {'apbsn': 'L1Loss'}  # plain L1 of the output to its own noisy input

    def stage_loss(self):
        """AP-BSN's training loss: the plain L1 of P^-1(D(P(I_N))) to its own noisy input (no mask)."""
        config = self.scheme_config
        prediction = pd_restore(self.net_g, self.lq, config.train_stride, config.size_multiple)
        return 'l_pix', self.cri_pix(prediction, self.lq)

    def test(self):
        """AP-BSN inference of ``self.lq`` into ``self.output`` (R^3 draws seeded by position from ``amsnet.seed``)."""
        config = self.scheme_config
        with self.evaluation_network() as net, torch.no_grad():
            self.output = apbsn_denoise(net, self.lq, PositionalMasks(config.seed), stride=config.test_stride,
                                        multiple=config.size_multiple, **config.chunk_kwargs(self.lq.device.type),
                                        refine_times=config.r3.times if config.r3.enabled else 0,
                                        refine_prob=config.r3.prob)
