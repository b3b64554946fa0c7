"""The demo's synthetic camera noise (amsnet_basicsr/camera_noise.py) has the properties AMSNet relies on.

Real sRGB noise is signal dependent and spatially correlated (demosaicking); PD with a large enough stride
breaks the correlation. Statistics are measured on flat images, where the noise is stationary.
"""
import numpy as np
import pytest

from amsnet_basicsr import camera_noise as cn


def _flat(value, size=192):
    return np.full((size, size, 3), value, dtype=np.float64)


def _noise_field(value, seed=0, **kwargs):
    """noisy - noise-free output of the same pipeline, on a flat image (no quantisation)."""
    noisy, clean = cn.camera_noise_pair(_flat(value), seed, quantize=False, **kwargs)
    return noisy.astype(np.float64) - clean.astype(np.float64)


def test_deterministic_under_seed_and_generator():
    image = (np.random.default_rng(5).random((40, 48, 3)) * 255).astype(np.uint8)
    first = cn.add_camera_noise(image, 7)
    assert np.array_equal(first, cn.add_camera_noise(image, 7))
    assert np.array_equal(first, cn.add_camera_noise(image, np.random.default_rng(7)))
    assert not np.array_equal(first, cn.add_camera_noise(image, 8))
    with pytest.raises(ValueError, match='explicit numpy Generator'):
        cn.add_camera_noise(image, None)


@pytest.mark.parametrize('demosaic', cn.DEMOSAIC_METHODS)
def test_output_in_unit_range_float32_same_shape(demosaic):
    image = (np.random.default_rng(1).random((33, 47, 3)) * 255).astype(np.uint8)  # odd sizes
    image[:4] = 0
    image[-4:] = 255  # black and saturated regions: clipping must keep [0, 1]
    noisy = cn.add_camera_noise(image, 0, shot_noise=0.05, demosaic=demosaic)
    assert noisy.dtype == np.float32 and noisy.shape == image.shape
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    levels = np.unique(np.round(noisy * 255, 4))
    assert np.allclose(levels, np.round(levels))  # quantize=True: 8-bit levels like a camera's sRGB output


def test_raw_noise_variance_grows_linearly_with_signal():
    """Poisson-Gaussian model (Brooks et al. Eq. 2-3): Var[y | x] = shot * x + read."""
    rng = np.random.default_rng(0)
    shot, read = 0.01, 1e-4
    variances = []
    for level in (0.05, 0.2, 0.5, 0.8):
        samples = cn.add_raw_noise(np.full(200_000, level), rng, shot, read)
        variances.append(samples.var())
        assert samples.mean() == pytest.approx(level, abs=1e-3)
        assert samples.var() == pytest.approx(shot * level + read, rel=0.03)
    assert all(a < b for a, b in zip(variances, variances[1:]))


def test_srgb_noise_is_signal_dependent():
    """After the ISP the noise level depends on the intensity (unlike AWGN): in linear light it grows with the
    signal; in sRGB the gamma compresses bright noise, so dark-mid tones are the noisiest."""
    levels = (0.1, 0.3, 0.5, 0.7, 0.9)
    linear_var, srgb_std = [], []
    for level in levels:
        noisy, clean = cn.camera_noise_pair(_flat(level), 3, quantize=False)
        linear_var.append((cn.srgb_to_linear(noisy) - cn.srgb_to_linear(clean)).var())
        srgb_std.append((noisy - clean).std())
    assert all(a < b for a, b in zip(linear_var, linear_var[1:]))
    assert linear_var[-1] > 3 * linear_var[0]
    assert max(srgb_std) > 1.3 * min(srgb_std)


@pytest.mark.parametrize('demosaic', cn.DEMOSAIC_METHODS)
def test_noise_is_correlated_at_distance_1_not_at_5(demosaic):
    """Demosaicking correlates neighbours; PD with stride 5 (paper) samples pixels 5 apart, which are not."""
    corr = cn.noise_correlation(_noise_field(0.5, demosaic=demosaic), max_distance=8)
    assert corr[0] > 0.3
    assert np.abs(corr[4:]).max() < 0.05
    assert np.abs(corr[4:]).max() < corr[0] / 6


def test_bilinear_noise_correlation_vanishes_from_distance_3():
    """The demo's PD stride argument (options file comments): ~0.15 at distance 2, ~0 from distance 3 on."""
    corr = cn.noise_correlation(_noise_field(0.4), max_distance=6)
    assert 0.05 < corr[1] < corr[0]
    assert np.abs(corr[2:]).max() < 0.04


def test_white_noise_has_no_correlation():
    """Sanity check of the estimator itself."""
    corr = cn.noise_correlation(np.random.default_rng(0).normal(size=(256, 256, 3)), max_distance=3)
    assert np.abs(corr).max() < 0.02


def test_demosaic_keeps_a_constant_colour():
    """RGGB sampling + demosaic is exact on a constant colour (checks OpenCV's Bayer pattern naming too)."""
    image = np.empty((12, 14, 3))
    image[...] = (0.8, 0.4, 0.1)
    bayer = cn.mosaic_rggb(image)
    assert bayer[0, 0] == 0.8 and bayer[0, 1] == 0.4 and bayer[1, 0] == 0.4 and bayer[1, 1] == 0.1
    for restored in (cn.demosaic_bilinear(bayer), cn.demosaic_opencv(bayer), cn.demosaic_opencv(bayer, True)):
        assert np.allclose(restored, image, atol=1e-4)


def test_no_noise_pipeline_round_trips_srgb():
    """With shot = read = 0 and bilinear demosaic of a flat image the ISP is (nearly) the identity."""
    _, clean = cn.camera_noise_pair(_flat(0.37, 16), 0, quantize=False)
    assert np.allclose(clean, 0.37, atol=1e-5)
    assert np.allclose(cn.linear_to_srgb(cn.srgb_to_linear(np.linspace(0, 1, 11))), np.linspace(0, 1, 11))


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match='variances'):
        cn.add_camera_noise(_flat(0.5, 8), 0, shot_noise=-1)
    with pytest.raises(ValueError, match='demosaic'):
        cn.add_camera_noise(_flat(0.5, 8), 0, demosaic='nearest')
    with pytest.raises(ValueError, match=r'\(H, W, 3\)'):
        cn.add_camera_noise(np.zeros((8, 8)), 0)
