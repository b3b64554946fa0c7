"""APBSNModel: the AP-BSN scheme (Lee et al., CVPR 2022) around a blind-spot network, for AMSNet's comparisons.

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
"""
import torch

from .. import scheme
from ..masks import PixelCoords, PositionalMasks
from .amsnet_model import AMSNetModel

from basicsr.utils.registry import MODEL_REGISTRY


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
