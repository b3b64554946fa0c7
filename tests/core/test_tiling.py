"""PD-aware overlapped tiling (amsnet_basicsr/tiling.py): geometry, masks, tiled == untiled."""
import pytest
import torch

from amsnet_basicsr import scheme, tiling
from amsnet_basicsr.masks import (
    GeneratorMasks,
    PixelCoords,
    PositionalMasks,
    positional_bits,
    positional_groups,
    positional_uniform,
)


def conv_net(depth, channels=3, width=8, seed=0):
    """A random plain CNN of ``depth`` 3x3 convolutions: receptive-field radius ``depth`` pixels."""
    torch.manual_seed(seed)
    layers = [torch.nn.Conv2d(channels, width, 3, padding=1), torch.nn.ReLU()]
    for _ in range(depth - 2):
        layers += [torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.ReLU()]
    layers.append(torch.nn.Conv2d(width, channels, 3, padding=1))
    return torch.nn.Sequential(*layers).eval()


class InputRecorder(torch.nn.Module):
    """Wraps a denoiser and records the largest input it was given."""

    def __init__(self, net):
        super().__init__()
        self.net, self.largest = net, (0, 0)

    def forward(self, x):
        self.largest = max(self.largest, tuple(x.shape[-2:]))
        return self.net(x)


def radius(depth, stride, refine):
    """Receptive-field radius in image pixels: MMDB at stride s sees s*depth; R^3 (s = 1) adds depth more."""
    return stride * depth + (depth if refine else 0)


@pytest.mark.parametrize('height,width,tile', [
    (64, 64, 32),     # divides tile and stride
    (67, 45, 40),     # odd sizes, nothing divides
    (50, 101, 48),    # wide, three tile columns
    (30, 70, 44),     # one tile row (tile > height), several columns
])
@pytest.mark.parametrize('refine', [0, 2])
def test_tiled_equals_untiled_when_receptive_field_fits_margin(height, width, tile, refine):
    """Predictions within overlap // 4 of an inner tile edge are never used, so a net whose receptive
    field fits that margin gives the untiled output up to float rounding."""
    depth, stride = 2, 2
    overlap = 4 * radius(depth, stride, refine)
    if tile <= 2 * overlap:
        tile = 2 * overlap + 4
    net = conv_net(depth)
    noisy = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(1))
    kwargs = dict(masks=PositionalMasks(3), stride=stride, refine_times=refine)
    untiled = tiling.denoise_image(net, noisy, **kwargs)
    plan = tiling.plan_tiles(height, width, tile, overlap, stride)
    assert tiling.num_tiles(plan) > 1
    tiled = tiling.denoise_image(net, noisy, tile_size=tile, overlap=overlap, tile_batch=3, **kwargs)
    assert tiled.shape == noisy.shape
    torch.testing.assert_close(tiled, untiled, rtol=0, atol=1e-5)


def test_tiled_close_to_untiled_for_deep_net_and_r3():
    """A net whose receptive field exceeds the margin: the blend keeps the error under 1/255 (the tiling goal)."""
    net = conv_net(6, width=8)
    noisy = torch.rand(1, 3, 75, 90, generator=torch.Generator().manual_seed(2))
    untiled = tiling.denoise_image(net, noisy, masks=PositionalMasks(0), refine_times=2)
    tiled = tiling.denoise_image(net, noisy, masks=PositionalMasks(0), refine_times=2, tile_size=56, overlap=24,
                                 tile_batch=4)
    assert (tiled - untiled).abs().max() < 1 / 255


@pytest.mark.parametrize('height,width', [(40, 30), (17, 9), (1, 5)])
def test_tile_larger_than_image_is_the_untiled_computation(height, width):
    net = conv_net(3)
    noisy = torch.rand(2, 3, height, width)
    untiled = tiling.denoise_image(net, noisy, masks=PositionalMasks(5), refine_times=1)
    tiled = tiling.denoise_image(net, noisy, masks=PositionalMasks(5), refine_times=1, tile_size=64, overlap=8)
    assert torch.equal(tiled, untiled)


def test_same_seed_identical_different_seed_different():
    net = conv_net(3)
    noisy = torch.rand(1, 3, 70, 66)
    kwargs = dict(refine_times=2, tile_size=40, overlap=12, tile_batch=2)
    first = tiling.denoise_image(net, noisy, masks=PositionalMasks(11), **kwargs)
    assert torch.equal(first, tiling.denoise_image(net, noisy, masks=PositionalMasks(11), **kwargs))
    assert torch.equal(tiling.denoise_image(net, noisy, masks=PositionalMasks(11)),
                       tiling.denoise_image(net, noisy, masks=PositionalMasks(11)))
    other = tiling.denoise_image(net, noisy, masks=PositionalMasks(12), **kwargs)
    assert (first - other).abs().max() > 1e-3


def test_tile_batching_does_not_change_the_result():
    net = conv_net(3)
    noisy = torch.rand(1, 3, 72, 72)
    one = tiling.denoise_image(net, noisy, masks=PositionalMasks(1), tile_size=32, overlap=8, tile_batch=1)
    many = tiling.denoise_image(net, noisy, masks=PositionalMasks(1), tile_size=32, overlap=8, tile_batch=5)
    torch.testing.assert_close(one, many, rtol=0, atol=1e-6)


def test_denoiser_never_sees_more_than_one_tile():
    """Peak memory is bounded by the tile size: MMDB inputs are tile/stride, R^3 inputs tile, per pass."""
    recorder = InputRecorder(conv_net(2))
    noisy = torch.rand(1, 3, 150, 130)
    tiling.denoise_image(recorder, noisy, masks=PositionalMasks(0), refine_times=1, tile_size=48, overlap=8,
                         chunk_size=4)
    assert recorder.largest <= (48, 48)


@pytest.mark.parametrize('size,tile,overlap,stride,multiple', [
    (1000, 256, 32, 2, 8), (257, 64, 10, 2, 1), (100, 100, 16, 2, 4), (33, 16, 4, 1, 1), (999, 96, 21, 5, 1)])
def test_plan_geometry(size, tile, overlap, stride, multiple):
    plan = tiling.plan_tiles(size, size + 7, tile, overlap, stride, multiple)
    unit = stride * multiple
    effective_overlap = -(-overlap // stride) * stride
    assert plan.overlap == effective_overlap
    for padded, length, origins, extent in ((plan.padded_height, plan.tile_height, plan.row_origins, size),
                                            (plan.padded_width, plan.tile_width, plan.col_origins, size + 7)):
        assert padded == -(-extent // unit) * unit  # the padding scheme.pd_down applies to a whole image
        assert length % unit == 0 and length <= max(tile // unit * unit, 0) or origins == [0]
        assert all(origin % stride == 0 for origin in origins)
        assert origins[0] == 0 and origins[-1] + length == padded
        for left, right in zip(origins, origins[1:]):
            assert left + length - right >= effective_overlap  # neighbours overlap by at least the overlap
            assert right > left


def test_blend_weights_cover_every_pixel_and_are_smooth():
    plan = tiling.plan_tiles(90, 70, 32, 8, 2)
    ones = torch.ones(1, 1, 90, 70)
    # blending constant tiles of 1 must give exactly 1 everywhere (weights normalised, no holes)
    blended = tiling.tiled_apply(lambda tiles, rows, cols, images: torch.ones_like(tiles), ones, plan)
    torch.testing.assert_close(blended, ones)
    window = tiling._axis_window(16, 32, 96, 8, 'cpu')
    assert window[0] == 0 and window[-1] == 0 and window[16] == 1
    assert (window[:16].diff() >= 0).all()  # monotone ramp, no jump at the inner edge
    assert window.diff().abs().max() <= 0.5


def test_positional_masks_follow_eq5_and_do_not_depend_on_the_tile():
    coords = PixelCoords.whole(1, 200, 300)
    bits = positional_bits(7, 0, coords)
    crop = positional_bits(7, 0, PixelCoords(coords.images, coords.rows[:, 50:90], coords.cols[:, 120:181]))
    assert torch.equal(crop, bits[..., 50:90, 120:181])
    count = bits.numel()
    for k in (2, 3, 4):
        groups = positional_groups(bits, k)
        for g in range(k):  # every group has frequency 1/k within 5 binomial standard deviations
            frequency = (groups == g).float().mean().item()
            assert abs(frequency - 1 / k) < 5 * ((1 / k) * (1 - 1 / k) / count) ** 0.5
        masked = sum(scheme.masked_in_branch(groups, i, k).long() for i in range(k))
        assert torch.equal(masked, torch.ones_like(masked))  # every pixel masked in exactly one branch
    groups = positional_groups(bits, 2).float()
    neighbour_agreement = (groups[..., 1:] == groups[..., :-1]).float().mean().item()
    assert abs(neighbour_agreement - 0.5) < 5 * (0.25 / count) ** 0.5  # no correlation between neighbours
    other = positional_bits(7, 1, coords)
    assert (positional_groups(other, 2) != positional_groups(bits, 2)).float().mean() > 0.4
    uniform = positional_uniform(bits)
    assert abs((uniform < 0.16).float().mean().item() - 0.16) < 5 * (0.16 * 0.84 / count) ** 0.5


def test_order_dependent_masks_are_refused_for_tiling():
    with pytest.raises(ValueError, match='position-invariant'):
        tiling.denoise_image(conv_net(2), torch.rand(1, 3, 8, 8), masks=GeneratorMasks(torch.Generator()))


def test_invalid_tile_settings_raise():
    with pytest.raises(ValueError, match='tile size'):
        tiling.plan_tiles(100, 100, 16, 8, 2)
    with pytest.raises(ValueError, match='overlap'):
        tiling.plan_tiles(100, 100, 64, -1, 2)


@pytest.mark.parametrize('single_pass', [True, False])
def test_self_ensemble_is_the_mean_of_the_eight_transformed_outputs(single_pass):
    """self_ensemble: the mean over the 8 flips / rotations, each mapped back, of the one-pass result -- tiled or
    not; a denoiser that commutes with them (a symmetric blur) is left unchanged."""
    noisy = torch.rand(1, 3, 100, 84, generator=torch.Generator().manual_seed(3))
    arguments = dict(single_pass=True, stride=1) if single_pass else dict(masks=PositionalMasks(5), refine_times=2)
    net = conv_net(3)
    expected = []
    for flip in (False, True):
        for turns in range(4):
            image = torch.rot90(noisy.flip(-1) if flip else noisy, turns, (-2, -1))
            output = torch.rot90(tiling.denoise_image(net, image, **arguments), -turns, (-2, -1))
            expected.append(output.flip(-1) if flip else output)
    expected = torch.stack(expected).mean(0)
    assert not torch.allclose(expected, tiling.denoise_image(net, noisy, **arguments), atol=1e-3)
    overlap = 4 * (radius(3, 1, False) if single_pass else radius(3, 2, True))  # as in the tiled == untiled test
    for tile_size in (None, 2 * overlap + 4):
        ensemble = tiling.denoise_image(net, noisy, self_ensemble=True, tile_size=tile_size, overlap=overlap,
                                        **arguments)
        torch.testing.assert_close(ensemble, expected, rtol=0, atol=1e-5)
    blur = torch.nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False)
    blur.weight.data[:] = torch.tensor([[1., 2., 1.], [2., 4., 2.], [1., 2., 1.]]) / 16
    if single_pass:
        assert torch.allclose(tiling.denoise_image(blur, noisy, self_ensemble=True, **arguments),
                              blur(noisy), atol=1e-6)


def test_self_ensemble_option_reaches_the_inference_function():
    from amsnet_basicsr.config import SchemeConfig
    from amsnet_basicsr.errors import OptionError
    with pytest.raises(OptionError, match='amsnet.self_ensemble must be true or false'):
        SchemeConfig.from_section({'self_ensemble': 1})
    for section in ({'self_ensemble': True}, {'self_ensemble': True, 'single_pass': True}):
        assert SchemeConfig.from_section({**section, 'size_multiple': 1}).inference_kwargs()['self_ensemble'] is True
    assert SchemeConfig.from_section({'size_multiple': 1}).inference_kwargs()['self_ensemble'] is False
