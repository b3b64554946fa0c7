"""The psd_scale bench: its noise draws have the measured noise's second moments, its risk estimates are unbiased
where the theory says so (a linear denoiser, Gaussian noise), and a run writes the table of what each criterion
picks."""
import numpy as np
import psd_scale
import pytest

from amsnet_basicsr.distill import classical

VARIANCE = 1e-3


def correlated_model():
    """Noise of variance :data:`VARIANCE` per channel, correlated 0.25 with each 4-neighbour (a non-negative PSD),
    channels independent."""
    autocorrelation = np.zeros((3, 3, 3))
    autocorrelation[1, 1] = VARIANCE
    autocorrelation[[0, 1, 1, 2], [1, 0, 2, 1]] = VARIANCE / 4
    return classical.NoiseModel(np.eye(3), autocorrelation)


def test_gaussian_noise_has_the_models_autocorrelation():
    noise = psd_scale.gaussian_noise(correlated_model(), 256, 256, np.random.default_rng(0))
    assert noise.var() == pytest.approx(VARIANCE, rel=0.05)
    lag_one = (noise[1:] * noise[:-1]).mean() / noise.var()
    assert lag_one == pytest.approx(0.25, abs=0.03)
    assert abs((noise[..., 0] * noise[..., 1]).mean()) < 0.03 * VARIANCE  # the channels stay independent


@pytest.mark.parametrize('shrink', [0.3, 0.8])
def test_sure_and_r2r_of_a_linear_denoiser_match_its_risk(shrink):
    """On pure noise (clean image 0) the denoiser ``shrink * y`` has the risk ``shrink^2 |n|^2``: SURE less the noise
    variance estimates it; R2R estimates it at the noise raised by 1 + a^2, plus (1 + 1 / a^2) times the variance."""
    model = correlated_model()
    noisy = psd_scale.gaussian_noise(model, 256, 256, np.random.default_rng(1))
    perturbation = psd_scale.gaussian_noise(model, 256, 256, np.random.default_rng(2))

    def linear(image):
        return shrink * image
    risk = shrink ** 2 * (noisy ** 2).mean()
    assert psd_scale.sure(linear, noisy, perturbation) - VARIANCE == pytest.approx(risk, abs=0.05 * VARIANCE)
    alpha = psd_scale.R2R_ALPHA
    expected = shrink ** 2 * (1 + alpha ** 2) * VARIANCE + (1 + alpha ** -2) * VARIANCE
    assert psd_scale.r2r(linear, noisy, perturbation) == pytest.approx(expected, rel=0.05)


def test_flat_block_noise_is_a_mosaic_of_whole_flat_blocks():
    rng = np.random.default_rng(0)
    flat = [rng.standard_normal((32, 32, 3)) for _ in range(3)]
    noise = psd_scale.flat_block_noise(flat, 80, 64, np.random.default_rng(1))
    assert noise.shape == (80, 64, 3)
    for top in (0, 32, 64):
        for left in (0, 32):
            piece = noise[top:top + 32, left:left + 32]
            assert any(np.array_equal(piece, block[:piece.shape[0]]) for block in flat)


def test_high_frequency_ratio_is_one_on_noise_and_grows_with_detail():
    rng = np.random.default_rng(0)
    flat = [rng.standard_normal((32, 32, 3)) for _ in range(20)]
    luma = np.full(3, 1 / 3)
    assert psd_scale.high_frequency_ratio(flat, flat, luma) == pytest.approx(1.0)
    checkerboard = (np.indices((32, 32)).sum(0) % 2)[..., None] * np.ones(3)
    assert psd_scale.high_frequency_ratio([block + checkerboard for block in flat], flat, luma) > 1.5


@pytest.mark.slow
def test_a_run_writes_what_each_criterion_picks(tmp_path):
    rows = psd_scale.run(['--out', str(tmp_path), '--variants', '0', '--scales', '1', '2', '--tile', '64',
                          '--tiles', '1'])
    assert [(row['variant'], row['photo']) for row in rows] == [(list(psd_scale.data_shift.VARIANTS)[0], 'coffee')]
    assert all(len(rows[0][key]) == 2 for key in ('psnr', 'sure', 'r2r_gaussian', 'r2r_flat'))
    assert 20 < min(rows[0]['psnr']) < max(rows[0]['psnr']) < 40
    table = (tmp_path / 'psd_scale.md').read_text()
    assert '| soft, bilinear (the demo: tuning variant) | coffee |' in table
