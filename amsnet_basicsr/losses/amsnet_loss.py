"""BasicSR loss modules for the two training stages; the formulas live in :mod:`amsnet_basicsr.scheme`."""
from torch import nn

from .. import scheme

from basicsr.utils.registry import LOSS_REGISTRY


@LOSS_REGISTRY.register()
class MaskedL1Loss(nn.Module):
    """L_m (Eq. 4), stage ``mask``: L1 between prediction and noisy input on the masked pixels only."""

    def __init__(self, loss_weight=1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, prediction, noisy, masked):
        return self.loss_weight * scheme.mask_loss(prediction, noisy, masked)


@LOSS_REGISTRY.register()
class FinetuneLoss(nn.Module):
    """L_t (Eq. 10), stage ``finetune``: lambda * L_p(I_DN) + ||I_DN - I_N||_1 on the full MMDB output."""

    def __init__(self, smoothness_weight=0.01, loss_weight=1.0):
        super().__init__()
        self.smoothness_weight = smoothness_weight
        self.loss_weight = loss_weight

    def forward(self, denoised, noisy):
        return self.loss_weight * scheme.finetune_loss(denoised, noisy, self.smoothness_weight)
