"""The embedded demo data (amsnet_basicsr/demo_data.py) shared by the demo and the ablation: one split by photo,
noisy-only training photos, noise that is reproducible per (seed, photo), blocks cut at the same place in the noisy
and the clean image."""
import numpy as np
import pytest

from amsnet_basicsr import camera_noise, demo_data

SIDE = 40  # photos reduced to 40 px (80 px after the enlargement): fast


def test_the_three_splits_are_disjoint_by_photo():
    train, val, test = set(demo_data.TRAIN_IMAGES), {demo_data.VAL_IMAGE}, set(demo_data.TEST_IMAGES)
    assert train and test and not train & val and not train & test and not val & test


def test_training_photos_have_no_clean_version():
    for name in demo_data.TRAIN_IMAGES[:2]:
        with pytest.raises(ValueError, match='training photos'):
            demo_data.paired_blocks((name,), seed=0, max_side=SIDE, block=16)
    with pytest.raises(ValueError, match='not test photos'):
        demo_data.test_blocks(seed=0, max_side=SIDE, block=16, limit=1, names=(demo_data.TRAIN_IMAGES[0],))


def test_training_images_are_the_noisy_camera_output_only():
    (name, noisy), = demo_data.training_images(seed=3, max_side=SIDE, names=demo_data.TRAIN_IMAGES[:1])
    photo = demo_data.photo(name, max_side=SIDE)
    expected_noisy, clean = camera_noise.camera_noise_pair(photo, demo_data.noise_rng(3, name))
    np.testing.assert_array_equal(noisy, expected_noisy)
    assert np.abs(noisy - clean).mean() > 0.01  # it is noisy, not the noise-free exposure
    np.testing.assert_array_equal(np.round(noisy * 255) / 255, noisy)  # the camera's 8-bit grid


def test_photos_are_reduced_then_enlarged_by_the_one_factor():
    original = demo_data.load_sample(demo_data.VAL_IMAGE)
    photo = demo_data.photo(demo_data.VAL_IMAGE, max_side=SIDE)
    scale = SIDE / max(original.shape[:2])
    assert max(photo.shape[:2]) == SIDE * demo_data.ENLARGE
    assert photo.shape[0] == round(original.shape[0] * scale) * demo_data.ENLARGE


def test_blocks_cut_noisy_and_clean_at_the_same_place_and_noise_is_per_seed_and_photo():
    blocks = demo_data.test_blocks(seed=1, max_side=64, block=32, limit=3)
    assert len(blocks) == 3 * len(demo_data.TEST_IMAGES) and len({key for key, _, _ in blocks}) == len(blocks)
    for key, noisy, clean in blocks:
        name, top, left = key.rsplit('_', 2)
        full_noisy, full_clean = camera_noise.camera_noise_pair(demo_data.photo(name, max_side=64),
                                                                demo_data.noise_rng(1, name))
        window = np.s_[int(top):int(top) + 32, int(left):int(left) + 32]
        np.testing.assert_array_equal(noisy, full_noisy[window])
        np.testing.assert_array_equal(clean, full_clean[window])
    again = demo_data.test_blocks(seed=1, max_side=64, block=32, limit=3)
    other_seed = demo_data.test_blocks(seed=2, max_side=64, block=32, limit=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(blocks, again))
    assert all(np.array_equal(a[2], b[2]) and not np.array_equal(a[1], b[1]) for a, b in zip(blocks, other_seed))
    val, = demo_data.validation_blocks(seed=1, max_side=64, block=32)
    assert val[0].startswith(demo_data.VAL_IMAGE + '_')


def test_block_corners_are_disjoint_centred_and_spread():
    corners = demo_data.block_corners(100, 70, size=30)
    assert corners == [(5 + 30 * r, 5 + 30 * c) for r in range(3) for c in range(2)]
    assert demo_data.block_corners(100, 70, size=30, limit=1) == [corners[3]]
    assert demo_data.block_corners(100, 70, size=30, limit=2) == [corners[0], corners[-1]]
