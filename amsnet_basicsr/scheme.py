"""The asymmetric mask scheme of AMSNet (Liao et al., ECCV 2024) as pure torch functions.

Nothing here knows about BasicSR: every function takes tensors, a denoiser (any image-to-image
``nn.Module`` with the same channels in and out: :data:`Denoiser`) and, where randomness is involved, an explicit
``torch.Generator`` on the device of the images or a mask source of :mod:`amsnet_basicsr.masks`
(:class:`~amsnet_basicsr.masks.MaskSource`). Equation numbers are those of the paper ("Eq.") and of its supplement
("Supp. Eq."). Images are (B, C, H, W) tensors in [0, 1].
"""
from typing import Any, Callable, Optional, Sequence, Union

import torch

from .masks import MaskSource, PixelCoords, sample_mask_groups, sample_replacement  # noqa: F401  (re-exported)

# a denoiser D_E: any image-to-image callable (an ``nn.Module``, an exported graph's runner), (N, C, h, w) -> same
Denoiser = Callable[[torch.Tensor], torch.Tensor]


def reflect(positions: torch.Tensor, size: int) -> torch.Tensor:
    """Integer positions (any, also beyond the edges) folded into 0..size-1 by mirror reflection (edge not repeated)."""
    if size == 1:
        return torch.zeros_like(positions)
    period = 2 * (size - 1)
    positions = positions % period
    return torch.where(positions < size, positions, period - positions)


def pad_to_multiple(x: torch.Tensor, unit: int) -> torch.Tensor:
    """Reflect-pad the last two dims of ``x`` (any dtype) at the bottom/right to multiples of ``unit``."""
    height, width = x.shape[-2:]
    padded_height, padded_width = -(-height // unit) * unit, -(-width // unit) * unit
    if (padded_height, padded_width) == (height, width):
        return x
    rows = reflect(torch.arange(padded_height, device=x.device), height)
    cols = reflect(torch.arange(padded_width, device=x.device), width)
    return x[..., rows[:, None], cols]


def pd_down(x: torch.Tensor, stride: int, multiple: int = 1) -> torch.Tensor:
    """Pixel-shuffle downsampling P_s (Sec. 3.2): (B, C, H, W) -> (B*s*s, C, H/s, W/s).

    Sub-image (i, j) is x[..., i::s, j::s] and sits at batch index b*s*s + i*s + j. H and W are first
    reflect-padded to multiples of ``stride * multiple`` so that the sub-images are multiples of
    ``multiple`` (the denoiser's size requirement); :func:`pd_up` crops the padding away.
    """
    x = pad_to_multiple(x, stride * multiple)
    batch, channels, height, width = x.shape
    s = stride
    x = x.reshape(batch, channels, height // s, s, width // s, s)
    return x.permute(0, 3, 5, 1, 2, 4).reshape(batch * s * s, channels, height // s, width // s)


def pd_up(y: torch.Tensor, stride: int, size: Sequence[int]) -> torch.Tensor:
    """Inverse pixel-shuffle P_s^-1 (Eq. 8): (B*s*s, C, h, w) -> (B, C, size[0], size[1])."""
    n, channels, height, width = y.shape
    s = stride
    y = y.reshape(n // (s * s), s, s, channels, height, width).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(n // (s * s), channels, height * s, width * s)[..., :size[0], :size[1]]


def check_mask_config(num_branches: int, masks_per_pixel: int = 1) -> None:
    """Raise ValueError unless 2 <= k and 1 <= m < k (Eq. 5, Supp. Sec. 1.2)."""
    if num_branches < 2:
        raise ValueError(f'num_branches (k) must be >= 2, got {num_branches}')
    if not 1 <= masks_per_pixel < num_branches:
        raise ValueError(f'masks_per_pixel (m) must be in [1, k-1] = [1, {num_branches - 1}], got {masks_per_pixel}')


def masked_in_branch(groups: torch.Tensor, branch: Union[int, torch.Tensor], num_branches: int,
                     masks_per_pixel: int = 1) -> torch.Tensor:
    """The complementary mask M~^i of branch i (Eq. 5): True where the pixel is zeroed in branch i.

    A pixel of group g is masked in the m branches g, g+1, ..., g+m-1 (mod k). With m = 1 this is the
    k-partition of Eq. 5 (sum_i M~^i = 1, sum_i M^i = k-1); with m > 1 it is the over-masking variant
    of Supp. Sec. 1.2 (each pixel masked in exactly m branches, ratio m/k per branch). ``branch`` may be a
    tensor broadcastable against ``groups``.
    """
    return torch.remainder(branch - groups, num_branches) < masks_per_pixel


def masked_training_forward(denoiser: Denoiser, noisy: torch.Tensor, stride: int, generator: torch.Generator, *,
                            num_branches: int = 2, masks_per_pixel: int = 1,
                            multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Single-mask training forward of variant B (Eq. 2-4).

    x_s = P_s(I_N); one fresh mask (branch 0 of a k-partition, ratio m/k); y = D_E(M ⊙ x_s).
    Returns ``(prediction, masked)`` in image space: the denoiser's output P_s^-1(y) and the bool
    (B, 1, H, W) mask M~ of the pixels it had to restore. Only those pixels may enter the loss.
    """
    batch, _, height, width = noisy.shape
    masked = masked_in_branch(sample_mask_groups(batch, height, width, num_branches, generator), 0, num_branches,
                              masks_per_pixel)
    sub_images = pd_down(noisy, stride, multiple).masked_fill(pd_down(masked, stride, multiple), 0)
    return pd_up(denoiser(sub_images), stride, noisy.shape[-2:]), masked


def mask_loss(prediction: torch.Tensor, target: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """L_m (Eq. 4): mean absolute error over the masked positions M~ only (all channels)."""
    weight = masked.to(prediction.dtype)
    total = weight.sum() * prediction.shape[1]
    return ((prediction - target).abs() * weight).sum() / total.clamp_min(1)


def samples_per_call(total: int, height: int, width: int, *, chunk_size: Optional[int] = None,
                     chunk_pixels: Optional[int] = None) -> int:
    """How many of ``total`` (height x width) denoiser inputs go into one call: at most ``chunk_size`` inputs and at
    most ``chunk_pixels`` pixels (at least one input); all of them when neither is given."""
    count = total
    if chunk_size:
        count = min(count, chunk_size)
    if chunk_pixels:
        count = min(count, max(1, chunk_pixels // (height * width)))
    return max(1, count)


def run_chunked(denoiser: Denoiser, batch: torch.Tensor, *, chunk_size: Optional[int] = None,
                chunk_pixels: Optional[int] = None) -> torch.Tensor:
    """``denoiser(batch)`` in calls of at most ``chunk_size`` samples and ``chunk_pixels`` pixels
    (:func:`samples_per_call`; one call when neither is given)."""
    step = samples_per_call(batch.shape[0], *batch.shape[-2:], chunk_size=chunk_size, chunk_pixels=chunk_pixels)
    if batch.shape[0] <= step:
        return denoiser(batch)
    return torch.cat([denoiser(batch[start:start + step]) for start in range(0, batch.shape[0], step)])


def mmdb(denoiser: Denoiser, noisy: torch.Tensor, stride: int, groups: torch.Tensor, *, num_branches: int = 2,
         masks_per_pixel: int = 1, multiple: int = 1, chunk_size: Optional[int] = None,
         chunk_pixels: Optional[int] = None) -> torch.Tensor:
    """Multi-branch mask complementary denoising block (Eq. 6-8; Supp. Eq. 2 for m > 1).

    I_DN = P_s^-1( sum_i M~^i ⊙ D_E(M^i ⊙ P_s(I_N)) / m ), with the masks of branch i given by the per-pixel
    ``groups`` (B, 1, H, W) of :func:`sample_mask_groups` (or any other draw with that layout). The k branch
    inputs of all B*s*s sub-images form one batch of k*B*s*s denoiser passes, run in chunks of at most ``chunk_size``
    passes and ``chunk_pixels`` pixels (:func:`samples_per_call`; all at once when neither is given); each chunk's
    masked inputs are built on the fly, so no full image is copied per mask.
    Differentiable: the fine-tune stage (Eq. 10) back-propagates through all branches.
    """
    check_mask_config(num_branches, masks_per_pixel)
    groups = pd_down(groups, stride, multiple)
    sub_images = pd_down(noisy, stride, multiple)
    num_sub_images = sub_images.shape[0]
    num_passes = num_branches * num_sub_images
    chunk_size = samples_per_call(num_passes, *sub_images.shape[-2:], chunk_size=chunk_size, chunk_pixels=chunk_pixels)
    restored = torch.zeros_like(sub_images)
    for start in range(0, num_passes, chunk_size):
        pass_index = torch.arange(start, min(start + chunk_size, num_passes), device=noisy.device)
        branch, sample = pass_index // num_sub_images, pass_index % num_sub_images
        masked = masked_in_branch(groups[sample], branch.view(-1, 1, 1, 1), num_branches, masks_per_pixel)
        prediction = denoiser(sub_images[sample].masked_fill(masked, 0))
        restored.index_add_(0, sample, prediction.masked_fill(~masked, 0).to(restored.dtype))
    return pd_up(restored / masks_per_pixel, stride, noisy.shape[-2:])


def random_replacement_refinement(restore: Denoiser, noisy: torch.Tensor, denoised: torch.Tensor,
                                  replace: torch.Tensor) -> torch.Tensor:
    """R^3, the random-replacement refinement of AP-BSN used by the -E variants (Sec. 3.5).

    T copies of I_DN in which the pixels where ``replace`` (T, B, 1, H, W) is True (all channels together) take
    their noisy value; ``restore`` runs on all T*B copies as one batch (AMSNet: MMDB without PD, s = 1; AP-BSN:
    the blind-spot network itself); the result is the mean of the T restored copies.
    """
    times = replace.shape[0]
    batch, channels, height, width = noisy.shape
    copies = torch.where(replace, noisy, denoised).reshape(times * batch, channels, height, width)
    return restore(copies).reshape(times, batch, channels, height, width).mean(0)


def denoise(denoiser: Denoiser, noisy: torch.Tensor, masks: MaskSource, *, coords: Optional[PixelCoords] = None,
            stride: int = 2, num_branches: int = 2, masks_per_pixel: int = 1, multiple: int = 1,
            chunk_size: Optional[int] = None, chunk_pixels: Optional[int] = None, refine_times: int = 0,
            refine_prob: float = 0.16) -> torch.Tensor:
    """Full inference: MMDB at the inference stride (variant B/P), then R^3 when ``refine_times`` > 0 (-E).

    ``masks`` is a mask source (:class:`~amsnet_basicsr.masks.MaskSource`: ``GeneratorMasks`` or
    ``PositionalMasks``) asked for the MMDB groups of Eq. 5 and for R^3's draws; ``coords``
    (:class:`~amsnet_basicsr.masks.PixelCoords`) are the source coordinates of the pixels of ``noisy`` (default:
    ``noisy`` is a batch of whole images). R^3 (AP-BSN, Sec. 3.5): T copies of I_DN, each pixel (all channels)
    replaced by its noisy value with probability p, MMDB at s = 1 on every copy, the mean of the T results; the T*k
    passes go through the denoiser as one batch, in chunks of at most ``chunk_size`` passes and ``chunk_pixels``
    pixels.
    """
    if not 0.0 <= refine_prob <= 1.0:
        raise ValueError(f'R3 replacement probability must be in [0, 1], got {refine_prob}')
    batch, _, height, width = noisy.shape
    coords = coords if coords is not None else PixelCoords.whole(batch, height, width, noisy.device)
    groups = masks.mmdb_groups(coords, num_branches=num_branches)
    settings: dict[str, Any] = dict(num_branches=num_branches, masks_per_pixel=masks_per_pixel, multiple=multiple,
                                    chunk_size=chunk_size, chunk_pixels=chunk_pixels)
    denoised = mmdb(denoiser, noisy, stride, groups, **settings)
    if refine_times <= 0:
        return denoised
    replace, copy_groups = masks.r3_draws(coords, times=refine_times, num_branches=num_branches, prob=refine_prob)
    return random_replacement_refinement(
        lambda copies: mmdb(denoiser, copies, 1, copy_groups, **settings),
        noisy, denoised, replace)


def smoothness_prior(image: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """L_p (Eq. 9): isotropic total variation sqrt(dx^2 + dy^2 + eps) of every channel, averaged over the pixels and
    the channels (Eq. 9 sums; the mean makes it comparable with the per-pixel L1 term of :func:`finetune_loss`)."""
    dy = image[..., 1:, :-1] - image[..., :-1, :-1]
    dx = image[..., :-1, 1:] - image[..., :-1, :-1]
    return torch.sqrt(dx * dx + dy * dy + eps).mean()


def finetune_loss(denoised: torch.Tensor, noisy: torch.Tensor, smoothness_weight: float = 0.01) -> torch.Tensor:
    """L_t (Eq. 10) = lambda * L_p(I_DN) + ||I_DN - I_N||_1, both terms means over pixels and channels.

    ``denoised`` is the full MMDB output, in which every pixel was predicted from an input where it was zeroed, so
    the L1 term to the noisy image cannot be minimised by the identity.

    Normalisation of lambda (``smoothness_weight``). Eq. 9-10 read literally -- both terms sums over the same
    pixels and channels -- give exactly this loss times N*C, so lambda here equals the paper's lambda (0.01 in
    Sec. 3.5; Fig. 11 favours 0.1). Two other conventions are common and change the scale: a colour total
    variation with the channels summed inside the square root is 1.85-1.95x this per-channel L_p on the demo's
    photos (clean and noisy), so lambda_colour = lambda / 1.9; and summing the k per-branch mask losses
    (sum_i L_m, each a mean over its branch's masked pixels, as the authors' code does) makes the data term k times
    this one, so lambda_per_branch = k * lambda.
    """
    return smoothness_weight * smoothness_prior(denoised) + (denoised - noisy).abs().mean()
