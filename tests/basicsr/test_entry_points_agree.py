"""One inference function (amsnet_basicsr.tiling.denoise_image with position-seeded masks) behind every entry point:
for the same weights, image, seed and scheme settings, ``AMSNetModel.test`` (what test.py and the demo run),
``amsnet-denoise`` with any ``--tile`` (0, larger than the image, or the options' tiles) and test.py itself give
bit-identical outputs for a convolutional denoiser."""
import cv2
import numpy as np
import pytest
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import denoise
from amsnet_basicsr.models.amsnet_model import AMSNetModel

from helpers import correlated_noisy, smooth_scene

from basicsr.utils import tensor2img

NET = {'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': 3, 'act_mode': 'R'}


def scheme_section(tile):
    return {'test_stride': 2, 'num_branches': 2, 'chunk_size': 5, 'seed': 7,
            'r3': {'enabled': True, 'times': 2, 'prob': 0.16}, 'tile': tile}


@pytest.fixture
def setup(tmp_path):
    """An 80x72 noisy PNG, a random DnCNN checkpoint, and the weights themselves."""
    rng = np.random.default_rng(0)
    noisy = correlated_noisy(smooth_scene(80, 72, rng), 0.08, rng)
    folder = tmp_path / 'noisy'
    folder.mkdir()
    image_path = folder / 'photo.png'
    cv2.imwrite(str(image_path), (noisy[..., ::-1] * 255).round().astype(np.uint8))
    torch.manual_seed(0)
    state = AMSNetModel(model_options(None, None)).net_g.state_dict()
    checkpoint = tmp_path / 'net_g.pth'
    torch.save({'params': state}, checkpoint)
    return image_path, checkpoint


def model_options(tile, checkpoint):
    return {'name': 'engine', 'model_type': 'AMSNetModel', 'is_train': False, 'dist': False, 'rank': 0,
            'num_gpu': 0, 'scale': 1, 'amsnet': scheme_section(tile), 'network_g': dict(NET),
            'path': {'pretrain_network_g': None if checkpoint is None else str(checkpoint), 'param_key_g': 'params',
                     'strict_load_g': True}}


def model_output(image_path, checkpoint, tile):
    """AMSNetModel.test on the image as BasicSR's test pipeline feeds it (RGB float in [0, 1]), as 8-bit BGR."""
    model = AMSNetModel(model_options(tile, checkpoint))
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255
    model.feed_data({'lq': torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]})
    model.test()
    return tensor2img(model.output, rgb2bgr=True)


@pytest.mark.parametrize('tile,flags', [
    ({'size': None}, ['--tile', '0']),
    ({'size': None}, ['--tile', '4096']),
    ({'size': 48, 'overlap': 8}, []),            # the options' tiles: 3x2 tiles on this image
    (None, ['--tile', '0']),                     # default tile (512) covers the image: whole-image computation
])
def test_model_test_and_amsnet_denoise_give_the_same_image(tmp_path, setup, write_options, tile, flags):
    image_path, checkpoint = setup
    option_file = write_options(tmp_path / 'options.yml', model_options(tile, checkpoint))
    out = tmp_path / 'out'
    assert denoise.main([str(image_path), str(out), '-opt', str(option_file), '--quiet', *flags]) == 0
    written = cv2.imread(str(out / image_path.name), cv2.IMREAD_UNCHANGED)
    expected = model_output(image_path, checkpoint, tile)
    noisy = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
    assert np.abs(written.astype(int) - noisy).max() > 10  # it did denoise
    assert np.array_equal(written, expected)


@pytest.mark.slow
def test_test_py_writes_the_same_image_as_amsnet_denoise(tmp_path, setup, write_options, run_entry_point):
    """test.py (a subprocess, BasicSR's test pipeline) vs amsnet-denoise --tile 0, same options file."""
    image_path, checkpoint = setup
    options = model_options({'size': None}, checkpoint)
    options.update({'datasets': {'test_1': {'name': 'photos', 'type': 'PairedFolderDataset',
                                            'dataroot_lq': str(image_path.parent)}},
                    'val': {'save_img': True, 'suffix': 'out'}})
    option_file = write_options(tmp_path / 'test.yml', options)
    run_entry_point('test.py', option_file, tmp_path)
    from_test_py = cv2.imread(str(tmp_path / 'results' / 'engine' / 'visualization' / 'photos' / 'photo_out.png'),
                              cv2.IMREAD_UNCHANGED)
    assert denoise.main([str(image_path), str(tmp_path / 'out'), '-opt', str(option_file), '--quiet',
                         '--tile', '0']) == 0
    assert np.array_equal(from_test_py, cv2.imread(str(tmp_path / 'out' / image_path.name), cv2.IMREAD_UNCHANGED))
