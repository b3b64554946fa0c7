"""Properties of the pure-torch scheme (amsnet_basicsr/scheme.py), each against the paper's equations."""
import math

import pytest
import torch
from torch import nn

from amsnet_basicsr import scheme
from amsnet_basicsr.masks import GeneratorMasks

from basicsr.losses.basic_loss import L1Loss


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def groups_for(noisy, num_branches=2, seed=0):
    """Mask groups (Eq. 5) for every pixel of ``noisy``."""
    return scheme.sample_mask_groups(noisy.shape[0], *noisy.shape[-2:], num_branches, generator(seed))


def wide_conv_net(channels=3, seed=0):
    """A random conv net whose receptive field (17x17) is far larger than one pixel."""
    torch.manual_seed(seed)
    layers = []
    for index in range(8):
        layers += [nn.Conv2d(channels if index == 0 else 16, 16, 3, padding=1), nn.Tanh()]
    return nn.Sequential(*layers, nn.Conv2d(16, channels, 3, padding=1)).double()


@pytest.mark.parametrize('size', [(20, 30), (21, 33), (7, 5), (1, 9)])
@pytest.mark.parametrize('stride,multiple', [(1, 1), (2, 1), (5, 1), (2, 4), (5, 3)])
def test_pd_inverse_is_exact(size, stride, multiple):
    x = torch.rand(2, 3, *size, generator=generator())
    sub_images = scheme.pd_down(x, stride, multiple)
    assert sub_images.shape[0] == 2 * stride * stride
    assert sub_images.shape[-2] % multiple == 0 and sub_images.shape[-1] % multiple == 0
    assert torch.equal(scheme.pd_up(sub_images, stride, size), x)


def test_pd_layout_matches_spec():
    """Sub-image (i, j) of image b is x[b, :, i::s, j::s] at batch index b*s*s + i*s + j."""
    x = torch.rand(2, 3, 15, 10, generator=generator())
    s = 5
    sub_images = scheme.pd_down(x, s)
    for b in range(2):
        for i in range(s):
            for j in range(s):
                assert torch.equal(sub_images[b * s * s + i * s + j], x[b, :, i::s, j::s])


def test_reflect_padding_handles_pads_longer_than_the_image():
    x = torch.arange(3.0).view(1, 1, 1, 3)
    padded = scheme.pad_to_multiple(x, 8)
    assert padded.shape == (1, 1, 8, 8)
    assert padded[0, 0, 0].tolist() == [0, 1, 2, 1, 0, 1, 2, 1]


def test_sizes_not_divisible_by_the_pd_strides_are_padded():
    """The scheme reflect-pads any size: a 29x37 image at stride 2 and a 23x23 crop at stride 5 keep their size."""
    net = wide_conv_net().float()
    generator = torch.Generator().manual_seed(0)
    noisy = torch.rand(1, 3, 29, 37)
    with torch.no_grad():
        out = scheme.denoise(net, noisy, GeneratorMasks(generator), stride=2, num_branches=2, refine_times=1)
    assert out.shape == noisy.shape and torch.isfinite(out).all()
    crop = torch.rand(2, 3, 23, 23)
    prediction, masked = scheme.masked_training_forward(net, crop, 5, generator, num_branches=2)
    loss = scheme.mask_loss(prediction, crop, masked)
    assert torch.isfinite(loss) and masked.shape[-2:] == crop.shape[-2:]


@pytest.mark.parametrize('num_branches,masks_per_pixel', [(2, 1), (3, 1), (4, 1), (4, 3), (3, 2)])
def test_every_pixel_masked_exactly_m_times(num_branches, masks_per_pixel):
    """Eq. 5: sum_i M~^i = 1 (m = 1); supplement Sec. 1.2: each pixel masked in exactly m branches."""
    groups = scheme.sample_mask_groups(2, 40, 50, num_branches, generator())
    assert groups.shape == (2, 1, 40, 50)
    masked = torch.stack([scheme.masked_in_branch(groups, i, num_branches, masks_per_pixel)
                          for i in range(num_branches)])
    assert torch.equal(masked.sum(0), torch.full_like(groups, masks_per_pixel))
    keep = ~masked
    assert torch.equal(keep.sum(0), torch.full_like(groups, num_branches - masks_per_pixel))


@pytest.mark.parametrize('num_branches,masks_per_pixel', [(2, 1), (4, 1), (4, 3)])
def test_mask_ratio_is_as_requested(num_branches, masks_per_pixel):
    groups = scheme.sample_mask_groups(4, 128, 128, num_branches, generator(1))
    ratio = masks_per_pixel / num_branches
    pixels = groups.numel()
    tolerance = 5 * math.sqrt(ratio * (1 - ratio) / pixels)  # 5 binomial standard deviations
    for branch in range(num_branches):
        observed = scheme.masked_in_branch(groups, branch, num_branches, masks_per_pixel).float().mean().item()
        assert abs(observed - ratio) < tolerance


def test_masks_are_reproducible_from_the_generator():
    first = scheme.sample_mask_groups(1, 32, 32, 2, generator(7))
    assert torch.equal(first, scheme.sample_mask_groups(1, 32, 32, 2, generator(7)))
    assert not torch.equal(first, scheme.sample_mask_groups(1, 32, 32, 2, generator(8)))


@pytest.mark.parametrize('num_branches,masks_per_pixel', [(2, 1), (3, 1), (4, 3)])
@pytest.mark.parametrize('stride,multiple', [(2, 1), (1, 1), (2, 4)])
def test_every_pixel_restored_exactly_once(num_branches, masks_per_pixel, stride, multiple):
    """MMDB (Eq. 7-8) keeps, for every pixel, only predictions made from inputs where that pixel was zeroed.

    With D_E(x) = x + 1, a prediction made at a zeroed pixel is exactly 1 and anywhere else it is > 1, so the
    MMDB output is 1 everywhere iff each pixel is taken from branches that masked it (averaged over m).
    """
    noisy = torch.rand(2, 3, 23, 18) + 0.5
    output = scheme.mmdb(lambda x: x + 1, noisy, stride, groups_for(noisy, num_branches), num_branches=num_branches,
                         masks_per_pixel=masks_per_pixel, multiple=multiple)
    assert output.shape == noisy.shape
    torch.testing.assert_close(output, torch.ones_like(noisy))


@pytest.mark.parametrize('stride,num_branches,masks_per_pixel,size', [
    (2, 2, 1, (16, 16)), (2, 2, 1, (15, 13)), (1, 2, 1, (12, 12)), (2, 4, 3, (14, 16)), (5, 3, 1, (17, 20))])
def test_mmdb_output_never_depends_on_its_own_noisy_pixel(stride, num_branches, masks_per_pixel, size):
    """The defining property: dI_DN[p] / dI_N[p] = 0 for every p, for a net with a wide receptive field.

    Checked for every pixel (all channels) with autograd, on sizes that need reflect padding too; the plain
    network's output does depend on its own input pixel.
    """
    net = wide_conv_net()
    noisy = torch.rand(1, 3, *size, dtype=torch.float64, requires_grad=True)
    height, width = size
    output = scheme.mmdb(net, noisy, stride, groups_for(noisy, num_branches, seed=3), num_branches=num_branches,
                         masks_per_pixel=masks_per_pixel)
    plain = net(noisy)
    for row in range(height):
        for col in range(width):
            grad_mmdb, = torch.autograd.grad(output[0, :, row, col].sum(), noisy, retain_graph=True)
            assert grad_mmdb[0, :, row, col].abs().max() == 0, f'pixel ({row}, {col}) sees itself'
            assert grad_mmdb.abs().sum() > 0, 'MMDB output must still depend on the other pixels'
            if row == height // 2 and col == width // 2:
                grad_plain, = torch.autograd.grad(plain[0, :, row, col].sum(), noisy, retain_graph=True)
                assert grad_plain[0, :, row, col].abs().max() > 0


def test_training_forward_restores_masked_pixels_without_seeing_them():
    """Eq. 2-4: the prediction at a masked pixel has zero gradient w.r.t. that pixel; ~1/k pixels are masked."""
    net = wide_conv_net()
    noisy = torch.rand(2, 3, 20, 25, dtype=torch.float64, requires_grad=True)
    prediction, masked = scheme.masked_training_forward(net, noisy, 5, generator(), num_branches=2)
    assert prediction.shape == noisy.shape and masked.shape == (2, 1, 20, 25)
    assert 0.3 < masked.float().mean() < 0.7
    rows, cols = torch.nonzero(masked[0, 0], as_tuple=True)
    for row, col in list(zip(rows.tolist(), cols.tolist()))[:40]:
        grad, = torch.autograd.grad(prediction[0, :, row, col].sum(), noisy, retain_graph=True)
        assert grad[0, :, row, col].abs().max() == 0


def test_mask_loss_reads_only_masked_pixels_and_matches_basicsr_weighted_l1():
    """L_m (Eq. 4) = BasicSR's L1Loss weighted by M~; the target at unmasked pixels never matters."""
    prediction, target = torch.rand(2, 3, 16, 16, generator=generator(1)), torch.rand(2, 3, 16, 16)
    masked = torch.rand(2, 1, 16, 16, generator=generator(2)) < 0.5
    loss = scheme.mask_loss(prediction, target, masked)
    torch.testing.assert_close(loss, L1Loss()(prediction, target, weight=masked.float()))
    perturbed = torch.where(masked, target, torch.rand_like(target))
    torch.testing.assert_close(scheme.mask_loss(prediction, perturbed, masked), loss)


@pytest.mark.parametrize('chunk_size', [1, 3, 7])
def test_chunked_inference_equals_unchunked(chunk_size):
    net = wide_conv_net().float()
    noisy = torch.rand(2, 3, 22, 19)
    with torch.no_grad():
        whole = scheme.denoise(net, noisy, GeneratorMasks(generator(5)), stride=2, refine_times=2, chunk_size=None)
        chunked = scheme.denoise(net, noisy, GeneratorMasks(generator(5)), stride=2, refine_times=2,
                                 chunk_size=chunk_size)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)


def test_r3_shape_range_and_mean_of_refined_copies():
    """R^3: T copies with noisy pixels swapped in with probability p, restored as one batch, mean of the T results."""
    net = nn.Sequential(wide_conv_net().float(), nn.Sigmoid())
    noisy, denoised = torch.rand(2, 3, 17, 21), torch.rand(2, 3, 17, 21)
    with torch.no_grad():
        refined = scheme.denoise(net, noisy, GeneratorMasks(generator()), stride=2, refine_times=4)
    assert refined.shape == noisy.shape and refined.min() >= 0 and refined.max() <= 1
    replace = scheme.sample_replacement(3, 2, 17, 21, 0.3, generator(9))
    assert replace.shape == (3, 2, 1, 17, 21) and 0.2 < replace.float().mean() < 0.4
    seen = []
    refined = scheme.random_replacement_refinement(lambda copies: seen.append(copies) or copies * 2, noisy, denoised,
                                                   replace)
    copies = seen[0].view(3, 2, 3, 17, 21)
    for t in range(3):  # copy t: the noisy pixel where replaced (all channels), the denoised one elsewhere
        torch.testing.assert_close(copies[t], torch.where(replace[t], noisy, denoised))
    torch.testing.assert_close(refined, 2 * copies.mean(0))
    all_noisy = scheme.sample_replacement(2, 2, 17, 21, 1.0, generator())
    torch.testing.assert_close(scheme.random_replacement_refinement(lambda c: c, noisy, denoised, all_noisy), noisy)
    with pytest.raises(ValueError, match='probability'):
        scheme.sample_replacement(2, 2, 17, 21, 1.5, generator())


def test_smoothness_prior_and_finetune_loss():
    """L_p (Eq. 9) is isotropic TV; L_t (Eq. 10) = lambda * L_p + L1, both per-pixel means."""
    flat = torch.full((1, 3, 8, 8), 0.3)
    torch.testing.assert_close(scheme.smoothness_prior(flat, eps=1e-6), torch.tensor(1e-3))
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8) * 0.1  # dx = 0.1, dy = 0
    torch.testing.assert_close(scheme.smoothness_prior(ramp, eps=0.0), torch.tensor(0.1))
    noisy = torch.rand(1, 3, 8, 8)
    expected = 0.5 * scheme.smoothness_prior(ramp) + (ramp - noisy).abs().mean()
    torch.testing.assert_close(scheme.finetune_loss(ramp, noisy, smoothness_weight=0.5), expected)


@pytest.mark.parametrize('num_branches,masks_per_pixel', [(1, 1), (2, 2), (3, 0)])
def test_invalid_mask_configurations_are_refused(num_branches, masks_per_pixel):
    with pytest.raises(ValueError, match='num_branches|masks_per_pixel'):
        scheme.mmdb(lambda x: x, torch.rand(1, 3, 8, 8), 2, torch.zeros(1, 1, 8, 8, dtype=torch.long),
                    num_branches=num_branches, masks_per_pixel=masks_per_pixel)


def test_calls_are_sized_by_count_and_by_pixels():
    """``samples_per_call``: at most ``chunk_size`` inputs and ``chunk_pixels`` pixels per call, never zero; and
    MMDB's output does not depend on the chunking."""
    from amsnet_basicsr.scheme import samples_per_call
    assert samples_per_call(16, 128, 128) == 16
    assert samples_per_call(16, 128, 128, chunk_size=4) == 4
    assert samples_per_call(16, 128, 128, chunk_pixels=2 * 256 * 256) == 8
    assert samples_per_call(16, 256, 256, chunk_pixels=2 * 256 * 256, chunk_size=1) == 1
    assert samples_per_call(3, 1024, 1024, chunk_pixels=2 * 256 * 256) == 1
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 3, 3, padding=1)
    noisy = torch.rand(1, 3, 32, 32)
    groups = scheme.sample_mask_groups(1, 32, 32, 2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = scheme.mmdb(net, noisy, 2, groups)
        by_pixels = scheme.mmdb(net, noisy, 2, groups, chunk_pixels=300)
    assert torch.allclose(whole, by_pixels, atol=1e-6)
