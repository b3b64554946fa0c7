"""BM3D as a second teacher (amsnet_basicsr.distill.classical): the noise model measured on the flat blocks of noisy
crops alone, its PSD, and BM3D given it."""
import numpy as np
import pytest

from amsnet_basicsr.distill import classical
from amsnet_basicsr.errors import OptionError

RADIUS = 4


def box_noise(rng, height, width, mixing=None):
    """Unit white noise summed over 2 x 2 boxes and halved: variance 1, correlation 0.5 at lag (0, 1) and (1, 0),
    0.25 at (1, 1), 0 from lag 2 on; channels mixed by ``mixing`` (3 x 3) when given."""
    white = rng.normal(size=(height + 1, width + 1, 3))
    noise = (white[1:, 1:] + white[:-1, 1:] + white[1:, :-1] + white[:-1, :-1]) / 2
    return noise if mixing is None else noise @ np.asarray(mixing).T


def on_grey(noise):
    """``noise`` on a mid-grey image: every block is flat and none is clipped."""
    return 0.5 + noise


def test_the_measured_autocorrelation_is_the_noise_s_with_the_bartlett_taper():
    rng = np.random.default_rng(0)
    crops = [on_grey(box_noise(rng, 128, 128) * 0.05) for _ in range(4)]
    model = classical.estimate_noise(crops, radius=RADIUS, fraction=1)
    centre = model.autocorrelation[RADIUS, RADIUS]
    normalised = model.autocorrelation / centre
    taper = 1 - np.arange(RADIUS + 1) / (RADIUS + 1)
    # 4 crops of 128^2: the sample correlation's standard error is ~1 / 256 per lag; 0.03 is ~8 of them (the plane
    # fit per 32-px block lowers the correlations by ~0.01: the variance of a plane through correlated noise)
    np.testing.assert_allclose(normalised[RADIUS, RADIUS + 1], 0.5 * taper[1], atol=0.03)
    np.testing.assert_allclose(normalised[RADIUS + 1, RADIUS], 0.5 * taper[1], atol=0.03)
    np.testing.assert_allclose(normalised[RADIUS + 1, RADIUS + 1], 0.25 * taper[1] ** 2, atol=0.03)
    np.testing.assert_allclose(normalised[RADIUS, RADIUS + 2:], 0, atol=0.03)
    np.testing.assert_allclose(model.autocorrelation, model.autocorrelation[::-1, ::-1], atol=1e-12)  # even


def test_the_colour_transform_decorrelates_mixed_channels_and_keeps_the_noise_variance():
    rng = np.random.default_rng(1)
    mixing = [[1.0, 0.6, 0.1], [0.2, 1.0, 0.5], [0.4, 0.0, 1.0]]
    noise = box_noise(rng, 256, 256, mixing) * 0.05
    model = classical.estimate_noise([on_grey(noise)], radius=RADIUS, fraction=1)
    transformed = (noise - noise.mean((0, 1))).reshape(-1, 3) @ model.transform.T
    correlation = np.corrcoef(transformed.T)
    assert np.abs(correlation - np.eye(3)).max() < 0.02  # whitened, then the orthogonal opponent rows
    assert np.abs(np.corrcoef(noise.reshape(-1, 3).T) - np.eye(3)).max() > 0.3  # the input's were not
    np.testing.assert_allclose(model.autocorrelation[RADIUS, RADIUS], transformed.var(0), rtol=0.05)


def test_the_psd_is_the_fourier_transform_of_the_tapered_autocorrelation():
    rng = np.random.default_rng(2)
    model = classical.estimate_noise([on_grey(box_noise(rng, 96, 96) * 0.1)], radius=RADIUS)
    psd = model.psd(64, 80)
    assert psd.shape == (64, 80, 3) and (psd > 0).all()
    back = np.real(np.fft.ifft2(psd / (64 * 80), axes=(0, 1)))  # bm3d's convention: white s^2 -> s^2 * H * W
    lags = np.arange(-RADIUS, RADIUS + 1)
    np.testing.assert_allclose(back[np.ix_(lags % 64, lags % 80)], model.autocorrelation, atol=1e-9)
    white = classical.NoiseModel(np.eye(3), np.pad(np.full((1, 1, 3), 0.01), ((RADIUS, RADIUS),) * 2 + ((0, 0),)))
    np.testing.assert_allclose(white.psd(16, 16), 0.01 * 16 * 16)


def test_the_noise_is_measured_on_the_flattest_blocks_only():
    """Left half: a brightness ramp (flat once a plane is fitted); right half: texture far stronger than the noise.
    With half of the blocks kept, the model is exactly the one of the left half alone."""
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:128, 0:128] / 128
    scene = np.repeat((0.3 + 0.3 * rows + 0.2 * cols)[..., None], 3, axis=2)
    scene[:, 64:] += 0.2 * np.sign(np.sin(40 * rows[:, 64:, None] + 30 * cols[:, 64:, None] + np.arange(3)))
    noisy = scene + box_noise(rng, 128, 128) * 0.03
    model = classical.estimate_noise([noisy], radius=RADIUS, fraction=0.5)
    left = classical.estimate_noise([noisy[:, :64]], radius=RADIUS, fraction=1)
    np.testing.assert_allclose(model.autocorrelation, left.autocorrelation, atol=1e-12)
    np.testing.assert_allclose(model.transform, left.transform, atol=1e-12)


def test_clipped_blocks_are_left_out():
    rng = np.random.default_rng(5)
    noise = box_noise(rng, 64, 64) * 0.03
    black_and_grey = np.concatenate([np.clip(noise, 0, 1), on_grey(noise)], axis=1)
    model = classical.estimate_noise([black_and_grey], radius=RADIUS, fraction=1)
    grey = classical.estimate_noise([on_grey(noise)], radius=RADIUS, fraction=1)
    np.testing.assert_allclose(model.autocorrelation, grey.autocorrelation, atol=1e-12)
    with pytest.raises(ValueError, match='not black or white'):
        classical.estimate_noise([np.clip(noise, 0, 1)], radius=RADIUS)


@pytest.mark.slow
def test_bm3d_given_the_measured_psd_beats_bm3d_told_white_noise_of_the_same_variance():
    """The point of the measurement: on noise correlated over 2 px, BM3D with the PSD measured on the noisy image
    alone removes more of it (BM3D's first stage, as the teacher runs it) than full BM3D with the right standard
    deviation but a white PSD: measured 35.6-35.8 against 30.9-31.3 dB (noisy 24.4-24.5) over the noise seeds 4-6 with
    bm3d 4.0.3 / bm4d 4.2.5 / OpenCV 5.1 (numpy, OpenCV and bm3d only: no torch in the path); the 2 dB margin is under
    half of the smallest gap (4.3 dB)."""
    import bm3d
    rng = np.random.default_rng(4)
    y, x = np.mgrid[0:128, 0:128] / 128
    clean = np.stack([0.5 + 0.3 * np.sin(6 * x), 0.4 + 0.3 * y, 0.3 + 0.2 * np.cos(5 * (x + y))], axis=-1)
    noise = box_noise(rng, 128, 128) * 0.06
    noisy = clean + noise
    model = classical.estimate_noise([noisy], radius=RADIUS)
    with_psd = classical.bm3d_denoise(noisy, model, psd_scale=1.0)
    told_white = np.clip(bm3d.bm3d_rgb(noisy, float(noise.std())), 0, 1)

    def psnr(image):
        return 10 * np.log10(1 / np.mean((image - clean) ** 2))

    assert psnr(with_psd) > psnr(told_white) + 2.0, (psnr(with_psd), psnr(told_white), psnr(noisy))


@pytest.mark.parametrize('section, message', [
    ([0.5], 'classical_teacher: expected a mapping'),
    ({'weights': 0.5}, r'classical_teacher.weights: unknown option'),
    ({'weight': 1.5}, r'classical_teacher.weight: a number in \[0, 1\]'),
    ({'weight': True}, r'classical_teacher.weight'),
    ({'psd_scale': 0}, r'classical_teacher.psd_scale: a positive number'),
    ({'noise_crops': 2.5}, r'classical_teacher.noise_crops: an integer >= 1'),
])
def test_the_section_errors_name_the_key(section, message):
    with pytest.raises(OptionError, match=message):
        classical.check_section(section)


def test_the_section_defaults():
    assert classical.check_section({}) == classical.DEFAULTS
    assert classical.check_section({'weight': 1})['weight'] == 1


def test_the_noise_mean_by_level_is_measured_through_a_tone_curve():
    """Zero-mean noise through a concave tone curve (sRGB's 1/2.2 power) has a negative mean in the output, larger in
    the shadows: the mean minus the median of the flat blocks' residuals finds it at each level (step 3), from 8
    flat crops per level, the channels apart: a bias of up to 1.1 grey levels to within 0.2 (measured: at most
    0.03-0.08 over seeds 3-8), read from the table at the level as the anchor reads it."""
    rng = np.random.default_rng(3)
    curve = 1 / 2.2
    centres = (np.arange(classical.BIAS_LEVELS) + 0.5) / classical.BIAS_LEVELS
    linear_levels = [centres[index] ** 2.2 for index in (4, 8, 10, 14)]  # bin centres after the curve
    crops, truth = [], {}
    for level in linear_levels:
        sigma = np.array([0.01, 0.02, 0.015])  # a different noise per channel, so a different bias
        samples = np.clip(level + sigma * rng.normal(size=(200_000, 3)), 0, None) ** curve
        truth[level ** curve] = samples.mean(0) - level ** curve
        crops += [np.clip(level + sigma * rng.normal(size=(64, 64, 3)), 0, None) ** curve for _ in range(8)]
    model = classical.estimate_noise(crops, radius=RADIUS, fraction=1)
    table = np.array(model.mean_bias)
    assert table.shape == (classical.BIAS_LEVELS, 4)
    for output_level, bias in truth.items():  # the table read at the level, as the anchor reads it
        found = [np.interp(output_level, table[:, 0], table[:, 1 + channel]) for channel in range(3)]
        assert np.abs(np.array(found) - bias).max() * 255 < 0.2, (output_level, found, bias)
    assert (table[0, 1:] < table[-1, 1:]).all()  # the curve bends most in the shadows


@pytest.mark.parametrize('levels', [8, classical.BIAS_LEVELS])
def test_the_noise_mean_table_has_a_row_at_each_bin_centre(levels):
    """``levels`` rows at the centres of even bins of [0, 1]; blocks of a constant bias 0.01 at two levels give it
    at every row (linear between the two points, flat beyond)."""
    residual = np.full((32, 32, 3), -0.01)  # the median of a block's residual is minus its bias
    blocks = [(0.0, np.full(3, level), residual) for level in (0.3, 0.7) for _ in range(classical.BIAS_MIN_BLOCKS)]
    table = np.array(classical.mean_bias(blocks, levels=levels))
    assert table[:, 0] == pytest.approx((np.arange(levels) + 0.5) / levels)
    assert table[:, 1:] == pytest.approx(0.01)


def test_zero_mean_noise_on_a_linear_image_has_no_mean_bias():
    rng = np.random.default_rng(4)
    crops = [level + 0.03 * rng.normal(size=(64, 64, 3)) for level in (0.3, 0.5, 0.7) for _ in range(8)]
    table = np.array(classical.estimate_noise(crops, radius=RADIUS, fraction=1).mean_bias)
    assert np.abs(table[:, 1:]).max() * 255 < 0.25  # 32 blocks per level: the median's spread is ~0.05 grey levels


def test_blocks_clipped_flat_do_not_dilute_the_noise_mean():
    """Blown-out blocks (all 1.0: the flattest of all, no noise left; kept they would put a bias of 0 at level 1) are
    left out of the noise's mean: with as many blown-out crops as noisy ones the measured bias of noise through a
    tone curve is what it is without them."""
    rng = np.random.default_rng(5)
    noisy = [np.clip(level + 0.02 * rng.normal(size=(64, 64, 3)), 0, None) ** (1 / 2.2) for level in (0.1, 0.5)
             for _ in range(8)]
    alone = np.array(classical.estimate_noise(noisy, radius=RADIUS, fraction=1).mean_bias)
    blown = np.array(classical.estimate_noise(noisy + [np.ones((64, 64, 3))] * 16, radius=RADIUS,
                                              fraction=1).mean_bias)
    assert np.abs(alone[:, 1:]).max() * 255 > 0.3  # a bias to find
    np.testing.assert_allclose(blown, alone, atol=1e-9)
