"""The noise-mean bench: its true curve is the noise's mean by clean level, a perfect denoiser anchored with the true
curve per pixel keeps no cast where the block-mean lookup of a curved bias does, and a run writes both tables."""
import noise_mean
import numpy as np
import pytest

# the noise's mean at levels 0, 0.2, 0.4, 0.6, 1 (every channel): not linear between 0.2 and 0.6
CURVE = tuple((level, value, value, value) for level, value in ((0.0, 0.0), (0.2, 0.02), (0.4, 0.0), (0.6, 0.02),
                                                                 (1.0, 0.0)))


def biased(clean):
    """``clean`` plus the noise mean :data:`CURVE` at its own level (noise without fluctuation)."""
    levels, values = np.array(CURVE)[:, 0], np.array(CURVE)[:, 1]
    return clean + np.interp(clean, levels, values)


def test_true_curve_is_the_mean_of_the_noise_at_each_clean_level():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0, 1, (256, 256, 3))
    noisy = biased(clean) + rng.normal(0, 0.05, clean.shape)
    rows = np.array(noise_mean.true_curve(noisy, clean, bins=10))
    assert rows[:, 0] == pytest.approx(np.arange(10) / 10 + 0.05)
    expected = np.interp(rows[:, 0], np.array(CURVE)[:, 0], np.array(CURVE)[:, 1])
    # the curve bends at bin edges only (0.2, 0.4, 0.6), so each bin's mean is its value at the centre; ~6,500 pixels
    # of noise sigma 0.05 per bin leave a standard error of ~0.0006
    assert np.abs(rows[:, 1:] - expected[:, None]).max() < 0.003


def test_a_curved_bias_needs_the_per_pixel_lookup():
    """A block of two levels, 0.2 and 0.6 in a checkerboard: the noise's mean is 0.02 at both, and the block's
    noisy mean, 0.42, reads 0.002 off the curve, so the block-mean lookup leaves 0.018 of it; per pixel, none."""
    clean = 0.2 + 0.4 * (np.indices((64, 64)).sum(0) % 2)[..., None] * np.ones(3)
    noisy = biased(clean)
    by_block = noise_mean.perfect_anchored(noisy, clean, CURVE, per_pixel=False)
    per_pixel = noise_mean.perfect_anchored(noisy, clean, CURVE, per_pixel=True)
    assert (by_block - clean).mean() == pytest.approx(0.018, abs=1e-4)
    assert np.abs(per_pixel - clean).max() < 1e-5


@pytest.mark.slow
def test_a_run_writes_the_casts_and_the_curves(tmp_path):
    results = noise_mean.run(['--out', str(tmp_path), '--variants', '0', '--bias-levels', '8', '16'])
    assert [(result['variant'], result['photo']) for result in results] == [
        (list(noise_mean.data_shift.VARIANTS)[0], 'coffee')]
    casts = {label: cast for label, (cast, _) in results[0]['scores'].items()}
    assert list(casts) == noise_mean.labels([8, 16])
    assert casts['true, per pixel'] < 0.5 < casts['noisy input']  # the anchor with the true curve leaves no cast
    assert casts['measured (16 levels), block means'] < casts['no mean']  # 0.52 against 1.31 measured
    table = (tmp_path / 'noise_mean.md').read_text()
    assert table.count('| soft, bilinear (the demo: tuning variant) | coffee |') == 2
    assert '| measured (8 levels), block means | measured (16 levels), block means |' in table
    assert '\n| mean | |' in table
