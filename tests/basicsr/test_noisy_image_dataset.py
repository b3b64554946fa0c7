"""The training dataset NoisyImageDataset (amsnet_basicsr/data/noisy_image_dataset.py) and bad images: an unusable
image is skipped with a warning or refused naming the file, converted images keep their content (gray, RGBA, 16-bit),
LMDB images are checked from their meta_info shapes, and a data error surfaces instead of hanging the loader."""
import copy
import threading

import cv2
import numpy as np
import pytest
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.data.noisy_image_dataset import NoisyImageDataset
from amsnet_basicsr.errors import ImageError, OptionError, one_line
from amsnet_basicsr.pipelines import install_patches
from amsnet_basicsr.progress import SafePrefetchGenerator

CROP = 24


def dataset_options(folder, **extra):
    return {'name': 'noisy', 'type': 'NoisyImageDataset', 'dataroot_lq': str(folder), 'io_backend': {'type': 'disk'},
            'crop_size': CROP, 'use_hflip': False, 'use_rot': False, 'phase': 'train', **extra}


def png_bytes(image):
    return cv2.imencode('.png', image)[1].tobytes()


@pytest.fixture
def caplog(caplog):
    """pytest's caplog, also fed by BasicSR's 'basicsr' logger (which does not propagate)."""
    import logging
    logger = logging.getLogger('basicsr')
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture
def folder(tmp_path):
    """One good 8-bit RGB image; tests add bad ones next to it."""
    folder = tmp_path / 'images'
    folder.mkdir()
    cv2.imwrite(str(folder / 'good.png'), np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return folder


# ------------------------------------------------------------------------------------ unusable images
UNUSABLE = {
    'corrupt': (lambda: b'\x89PNG\r\n\x1a\n' + bytes(40), 'not a decodable image'),  # PNG signature, broken header
    'empty': (lambda: b'', 'empty file (0 bytes)'),
    'not_an_image': (lambda: b'name,value\nnoise,0.1\n', 'not an image'),
    'too_small': (lambda: png_bytes(np.zeros((CROP - 1, 40, 3), np.uint8)), f'{CROP - 1}x40, smaller than crop_size'),
}


@pytest.mark.parametrize('case', sorted(UNUSABLE))
def test_unusable_image_is_refused_naming_the_file(folder, case):
    content, reason = UNUSABLE[case]
    bad = folder / f'{case}.png'
    bad.write_bytes(content())
    with pytest.raises(ImageError) as error:
        NoisyImageDataset(dataset_options(folder, bad_images='error'))
    assert str(bad) in str(error.value) and reason in str(error.value)


@pytest.mark.parametrize('case', sorted(UNUSABLE))
def test_unusable_image_is_skipped_with_a_warning_by_default(folder, case, caplog):
    content, reason = UNUSABLE[case]
    bad = folder / f'{case}.png'
    bad.write_bytes(content())
    dataset = NoisyImageDataset(dataset_options(folder))
    assert dataset.paths == [str(folder / 'good.png')]
    assert any(str(bad) in record.getMessage() and reason in record.getMessage() for record in caplog.records)


def test_corrupt_data_behind_a_valid_header_is_found_when_read(folder, caplog):
    """A PNG cut after its pixel data started passes the header scan; reading it skips it or names it."""
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    content = png_bytes(image)
    bad = folder / 'truncated.png'
    bad.write_bytes(content[:len(content) // 2])
    strict = NoisyImageDataset(dataset_options(folder, bad_images='error'))
    assert str(bad) in strict.paths  # the header is fine
    with pytest.raises(ImageError, match='truncated.png: not a decodable image'):
        strict[strict.paths.index(str(bad))]
    lenient = NoisyImageDataset(dataset_options(folder))
    item = lenient[lenient.paths.index(str(bad))]
    assert item['lq_path'] == str(folder / 'good.png') and item['lq'].shape == (3, CROP, CROP)
    assert any('truncated.png' in record.getMessage() for record in caplog.records)


def test_zero_usable_images_stops_at_dataset_construction(tmp_path):
    folder = tmp_path / 'images'
    folder.mkdir()
    (folder / 'notes.txt').write_text('no images here')
    (folder / 'tiny.png').write_bytes(png_bytes(np.zeros((8, 8, 3), np.uint8)))
    with pytest.raises(ImageError) as error:
        NoisyImageDataset(dataset_options(folder))
    message = str(error.value)
    assert 'no usable training image' in message and 'notes.txt: not an image' in message
    assert 'tiny.png: image is 8x8, smaller than crop_size 24' in message


# ------------------------------------------------------------------------------------ converted images
def read_single(folder, name, image):
    cv2.imwrite(str(folder / name), image)
    (folder / 'good.png').unlink()
    dataset = NoisyImageDataset(dataset_options(folder))
    assert dataset.paths == [str(folder / name)]
    return dataset[0]['lq']


def test_grayscale_image_is_replicated_to_rgb(folder):
    gray = np.random.default_rng(2).integers(0, 256, (CROP, CROP), dtype=np.uint8)
    lq = read_single(folder, 'gray.png', gray)
    assert lq.shape == (3, CROP, CROP)
    assert torch.equal(lq[0], lq[1]) and torch.equal(lq[1], lq[2])
    assert torch.allclose(lq[0], torch.from_numpy(gray.astype(np.float32) / 255))


def test_rgba_image_drops_alpha(folder):
    bgra = np.random.default_rng(3).integers(0, 256, (CROP, CROP, 4), dtype=np.uint8)
    lq = read_single(folder, 'rgba.png', bgra)
    expected = torch.from_numpy(bgra[..., 2::-1].astype(np.float32) / 255).permute(2, 0, 1)  # BGR(A) -> RGB
    assert torch.allclose(lq, expected)


def test_16_bit_image_keeps_its_precision(folder):
    bgr16 = np.random.default_rng(4).integers(0, 65536, (CROP, CROP, 3), dtype=np.uint16)
    lq = read_single(folder, 'deep.png', bgr16)
    expected = torch.from_numpy(bgr16[..., ::-1].astype(np.float32) / 65535).permute(2, 0, 1)
    assert torch.allclose(lq, expected, atol=1e-6)  # 8-bit decoding would be off by up to 1/255


# ------------------------------------------------------------------------------------ LMDB
def test_lmdb_images_are_checked_from_meta_info_shapes(tmp_path):
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs
    images = tmp_path / 'images'
    images.mkdir()
    rng = np.random.default_rng(5)
    for name, size in (('big.v2', 32), ('small', CROP - 4)):  # a key with a dot: basicsr's own reader breaks it
        cv2.imwrite(str(images / f'{name}.png'), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    lmdb_path = tmp_path / 'noisy.lmdb'
    make_lmdb_from_imgs(str(images), str(lmdb_path), ['big.v2.png', 'small.png'], ['big.v2', 'small'],
                        map_size=1 << 24)
    options = dataset_options(lmdb_path, io_backend={'type': 'lmdb'})
    with pytest.raises(ImageError, match=rf'small: image is {CROP - 4}x{CROP - 4}, smaller than crop_size'):
        NoisyImageDataset({**options, 'bad_images': 'error'})
    dataset = NoisyImageDataset(copy.deepcopy(options))
    assert dataset.paths == ['big.v2'] and dataset[0]['lq'].shape == (3, CROP, CROP)
    (lmdb_path / 'meta_info.txt').unlink()
    with pytest.raises(OptionError, match='dataroot_lq: .*meta_info.txt is missing'):
        NoisyImageDataset(copy.deepcopy(options))


# ------------------------------------------------------------------------------------ data errors surface
def test_prefetch_mode_cpu_raises_a_data_error_instead_of_hanging(folder):
    """basicsr's prefetch thread died silently and left the training loop waiting forever."""
    import basicsr.data.prefetch_dataloader as prefetch
    install_patches()
    assert prefetch.PrefetchGenerator is SafePrefetchGenerator
    bad = folder / 'truncated.png'
    content = png_bytes(np.random.default_rng(6).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    bad.write_bytes(content[:len(content) // 2])
    (folder / 'good.png').unlink()
    dataset = NoisyImageDataset(dataset_options(folder, bad_images='error'))
    loader = prefetch.PrefetchDataLoader(num_prefetch_queue=1, dataset=dataset, batch_size=1, num_workers=0)
    outcome = {}

    def consume():
        try:
            next(iter(loader))
        except Exception as error:  # noqa: BLE001
            outcome['error'] = error

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), 'the consumer hangs'
    assert isinstance(outcome.get('error'), ImageError) and 'truncated.png' in str(outcome['error'])


def test_error_from_a_dataloader_worker_keeps_its_type_and_message(folder):
    content = png_bytes(np.random.default_rng(7).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    (folder / 'good.png').write_bytes(content[:len(content) // 2])  # header fine, pixel data cut
    dataset = NoisyImageDataset(dataset_options(folder, bad_images='error'))
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=1)
    with pytest.raises(ImageError) as error:
        next(iter(loader))
    assert one_line(error.value) == f'{folder / "good.png"}: not a decodable image (corrupt, truncated or not an ' \
                                     'image file)'
