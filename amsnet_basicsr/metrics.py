"""Validation metrics registered into BasicSR's METRIC_REGISTRY: the checkerboard index of PD-based denoisers and
the clean-free masked hold-out loss.

**Checkerboard index** (AMSNet supplement Sec. 1.4, Fig. 3-4). Pixel-shuffle downsampling at stride s denoises the
s*s phases of an image (pixels (i + s*a, j + s*b) for fixed (i, j)) independently, so each phase carries its own local
bias and the output shows an s-periodic "checkerboard" pattern. :func:`checkerboard_index` measures that pattern in the
error ``output - reference``:

    e = output - reference;   e_ij = e[..., i::s, j::s]                (the s*s phases, one sub-image each)
    m_ij = box_w(e_ij)                                                    (local mean over w x w phase pixels)
    CB = 255 * RMS_{ij, pixels, channels}( m_ij - mean_ij(m_ij) )         (in 8-bit grey levels)

i.e. the RMS of the locally averaged s-periodic component of the error. It is zero for a perfect output, and for an
error with no periodic structure it stays at a floor of about std(e) / w * sqrt(1 - 1/s^2) (white error; smooth
errors give less), so compare methods on the same images: AMSNet-B vs P vs E (the supplement's Fig. 4 ordering is
B > P > P-E). Pure torch; :func:`calculate_checkerboard` is the BasicSR-metric form (uint8 HWC images).

**Masked hold-out loss** ``masked_holdout`` (:data:`HOLDOUT_METRIC`): L_m (Eq. 4) of the single-mask training
forward (Eq. 2-3, PD at ``amsnet.train_stride``) with a fixed mask seeded by ``amsnet.seed``, against the noisy input
itself (``AMSNetModel.masked_holdout_loss``). It reads no clean image, is deterministic and lower is better. It needs
the network, not an output image, so the model's validation loop
(:class:`~amsnet_basicsr.models.validation.ValidationMixin`) computes it; the registered :func:`masked_holdout` names
it for BasicSR and explains itself when anything else asks for it.
"""
from typing import Optional

import numpy as np
import torch
from torch.nn import functional as F

from . import basicsr_compat  # noqa: F401  (the torchvision alias, before basicsr is imported)
from .errors import OptionError
from .scheme import pd_down

from basicsr.utils.registry import METRIC_REGISTRY

HOLDOUT_METRIC = 'masked_holdout'


def checkerboard_index(output: torch.Tensor, reference: torch.Tensor, stride: int = 2, window: int = 4) -> float:
    """Checkerboard index (module docstring) of (B, C, H, W) images in [0, 1]; returns a float in grey levels."""
    if output.shape != reference.shape:
        raise ValueError(f'checkerboard_index: shapes differ, {tuple(output.shape)} vs {tuple(reference.shape)}')
    if stride < 2:
        raise ValueError(f'checkerboard_index: stride must be >= 2, got {stride}')
    height, width = output.shape[-2:]
    height, width = height - height % stride, width - width % stride
    if height // stride < window or width // stride < window:
        raise ValueError(f'checkerboard_index: image {tuple(output.shape[-2:])} too small for stride {stride} '
                         f'and window {window}')
    error = (output.double() - reference.double())[..., :height, :width]
    batch, channels = error.shape[:2]
    phases = pd_down(error, stride)                                      # (B*s*s, C, H/s, W/s)
    local = F.avg_pool2d(phases, window, stride=1)                       # valid w x w means per phase
    local = local.reshape(batch, stride * stride, channels, *local.shape[-2:])
    periodic = local - local.mean(dim=1, keepdim=True)
    return 255.0 * periodic.pow(2).mean().sqrt().item()


@METRIC_REGISTRY.register()
def calculate_checkerboard(img: np.ndarray, img2: np.ndarray, stride: int = 2, window: int = 4, **kwargs) -> float:
    """BasicSR metric form of :func:`checkerboard_index`: ``img`` (output) and ``img2`` (GT) uint8 HWC arrays.

    Use in an options file as ``val.metrics.checkerboard: {type: calculate_checkerboard, stride: 2}`` (lower is
    better; the module must be imported, e.g. ``import amsnet_basicsr.metrics``).
    """
    def to_tensor(image):
        image = np.asarray(image, dtype=np.float64)
        if image.ndim == 2:
            image = image[..., None]
        return torch.from_numpy(image / 255.0).permute(2, 0, 1)[None]
    return checkerboard_index(to_tensor(img), to_tensor(img2), stride, window)


@METRIC_REGISTRY.register()
def masked_holdout(img: Optional[np.ndarray] = None, loss: Optional[float] = None, **kwargs) -> float:
    """The BasicSR-metric form of the masked hold-out loss (module docstring; L_m of Eq. 4 on a fixed mask): ``loss``,
    the value of the model's ``masked_holdout_loss`` for the current image, as a float. It cannot be calculated from
    an output image ``img``: without ``loss`` it raises :class:`OptionError` -- the validation loop of AMSNetModel
    (:class:`~amsnet_basicsr.models.validation.ValidationMixin`) computes the metric itself."""
    if loss is None:
        raise OptionError(f'val.metrics: type {HOLDOUT_METRIC} is computed by the validation of AMSNetModel '
                          '(ValidationMixin); it cannot be calculated from output images alone')
    return float(loss)
