"""The classical filters beside AMSNet (amsnet_basicsr/baselines.py): tuned on validation blocks only (the test
blocks' clean images are not an argument of the choice), they pick a value that is a local
optimum there, and on correlated camera noise they improve on the noisy input."""
import numpy as np
import pytest

from amsnet_basicsr import baselines, camera_noise

from conftest import smooth_scene


def psnr(output, clean):
    return float(10 * np.log10(1 / np.mean((np.clip(output, 0, 1) - clean) ** 2)))


def blocks(seed, count, size=40):
    rng = np.random.default_rng(seed)
    result = []
    for index in range(count):
        noisy, clean = camera_noise.camera_noise_pair(smooth_scene(size, size, rng), seed * 10 + index)
        result.append((f'b{index}', noisy, clean))
    return result


@pytest.mark.parametrize('name', ['OpenCV NLM', pytest.param('BM3D', marks=pytest.mark.slow)])  # BM3D: ~1 s a call
def test_tuned_on_validation_only_and_better_than_the_noisy_input(name):
    validation, test = blocks(0, 1), blocks(1, 2)
    parameter, outputs, seconds = baselines.tune_and_apply(name, validation, test, psnr)
    filter_fn, _ = baselines.FILTERS[name]

    def on_validation(value):
        return np.mean([psnr(filter_fn(noisy, value), clean) for _, noisy, clean in validation])

    # a real optimum of the validation score: better than one grid step either side
    for neighbour in (parameter / baselines.GRID_RATIO, parameter * baselines.GRID_RATIO):
        assert on_validation(parameter) >= on_validation(neighbour)
    gains = [psnr(output, clean) - psnr(noisy, clean) for output, (_, noisy, clean) in zip(outputs, test)]
    assert min(gains) > 1.0 and seconds > 0


def test_filter_strength_follows_the_noise_estimate():
    """The tuned parameter is a factor on each image's noise estimate: on white Gaussian noise the estimate reads
    the true sigma (within 10 %), so a noisier image gets a proportionally stronger filter without re-tuning."""
    rng = np.random.default_rng(0)
    clean = smooth_scene(96, 96, rng)
    for sigma in (0.02, 0.05):
        noisy = clean + rng.normal(0, sigma, clean.shape).astype(np.float32)
        assert baselines.noise_sigma(noisy) == pytest.approx(sigma, rel=0.1)
