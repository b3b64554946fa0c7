"""The classical filters beside AMSNet (amsnet_basicsr/baselines.py): tuned on validation blocks only (the test
blocks' clean images are not an argument of the choice), they pick the grid value that is
best there, and on correlated camera noise they improve on the noisy input."""
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


@pytest.mark.parametrize('name', sorted(baselines.FILTERS))
def test_tuned_on_validation_only_and_better_than_the_noisy_input(name):
    validation, test = blocks(0, 1), blocks(1, 2)
    parameter, outputs, seconds = baselines.tune_and_apply(name, validation, test, psnr)
    filter_fn, grid = baselines.FILTERS[name]
    on_validation = {value: np.mean([psnr(filter_fn(noisy, value), clean) for _, noisy, clean in validation])
                     for value in grid}
    assert parameter == max(on_validation, key=on_validation.get)
    gains = [psnr(output, clean) - psnr(noisy, clean) for output, (_, noisy, clean) in zip(outputs, test)]
    assert min(gains) > 1.0 and seconds > 0
