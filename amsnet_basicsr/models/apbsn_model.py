"""APBSNModel: the AP-BSN scheme (Lee et al., CVPR 2022) around a blind-spot network, for AMSNet's comparisons.

AMSNet's identity-mapping ablation (paper Tab. 3, supplement Sec. 1.8) trains the same denoiser under both schemes:

* AP-BSN -- training: PD at ``amsnet.train_stride`` (5), the network on every sub-image, P^-1, plain L1 to the noisy
  input (no mask). Only a blind-spot network (D-BSN, ``DBSNl``) keeps this from learning the identity; with an
  unrestricted network (``DBSNl`` with ``unrestricted: true``, D_AS) it collapses towards the noisy input.
  Inference: PD at ``amsnet.test_stride`` (2), then, when ``amsnet.r3.enabled``, R^3 with the network itself at
  s = 1 (AP-BSN's original inference uses R^3: T = 8, p = 0.16).
* AMSNet -- :class:`~amsnet_basicsr.models.amsnet_model.AMSNetModel` (masks instead of a blind spot).

Options are those of AMSNetModel (``amsnet:`` section; ``num_branches`` and ``masks_per_pixel`` are unused here);
the loss is BasicSR's ``L1Loss`` (``train.pixel_opt: {type: L1Loss}``); ``train.stage`` must be absent or ``apbsn``.
"""
from collections import OrderedDict

import torch
from basicsr.utils.registry import MODEL_REGISTRY

from .. import checkpoint, scheme
from .amsnet_model import AMSNetModel


def run_chunked(net, batch, chunk_size=None):
    """``net(batch)``, ``chunk_size`` samples at a time (all at once when None)."""
    if not chunk_size or batch.shape[0] <= chunk_size:
        return net(batch)
    return torch.cat([net(batch[start:start + chunk_size]) for start in range(0, batch.shape[0], chunk_size)])


def pd_restore(net, noisy, stride, multiple=1, chunk_size=None):
    """P_s^-1(D(P_s(I_N))): the network on every PD sub-image, no mask (AP-BSN's forward; s = 1: the plain network)."""
    sub_images = scheme.pd_down(noisy, stride, multiple)
    return scheme.pd_up(run_chunked(net, sub_images, chunk_size), stride, noisy.shape[-2:])


def apbsn_denoise(net, noisy, generator, stride=2, multiple=1, chunk_size=None, refine_times=0, refine_prob=0.16):
    """AP-BSN inference: the network at the test stride, then R^3 with the network itself at s = 1 (no masks)."""
    denoised = pd_restore(net, noisy, stride, multiple, chunk_size)
    if refine_times > 0:
        batch, _, height, width = noisy.shape
        replace = scheme.sample_replacement(refine_times, batch, height, width, refine_prob, generator)
        denoised = scheme.random_replacement_refinement(
            lambda copies: pd_restore(net, copies, 1, multiple, chunk_size), noisy, denoised, replace)
    return denoised


def apbsn_loss(net, noisy, stride, multiple=1):
    """AP-BSN's training loss: || P_s^-1(D(P_s(I_N))) - I_N ||_1 over all pixels (no mask)."""
    return (pd_restore(net, noisy, stride, multiple) - noisy).abs().mean()


@MODEL_REGISTRY.register()
class APBSNModel(AMSNetModel):
    """AP-BSN training and inference around ``network_g`` (module docstring); everything else is AMSNetModel's."""

    STAGE_LOSSES = {'apbsn': 'L1Loss'}  # plain L1 of the output to its own noisy input

    def optimize_parameters(self, current_iter):
        options = self.scheme_options
        self.optimizer_g.zero_grad()
        prediction = pd_restore(self.net_g, self.lq, options.train_stride, options.size_multiple)
        loss = self.cri_pix(prediction, self.lq)
        loss.backward()
        self.optimizer_g.step()
        self.log_dict = checkpoint.reduce_loss_dict(OrderedDict([('l_pix', loss)]), self.opt)
        checkpoint.check_finite_log(self.log_dict, current_iter, self.opt)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def test(self):
        """AP-BSN inference of ``self.lq`` into ``self.output`` (R^3 draws seeded from ``amsnet.seed``)."""
        options = self.scheme_options
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        was_training = net.training
        net.eval()
        generator = torch.Generator(self.device).manual_seed(options.seed)
        with torch.no_grad():
            self.output = apbsn_denoise(net, self.lq, generator, options.test_stride, options.size_multiple,
                                        options.chunk_size, options.r3['times'] if options.r3['enabled'] else 0,
                                        options.r3['prob'])
        net.train(was_training)
