"""Bad images, bad option files and a non-finite loss: handled, or refused naming the file / key."""
import copy
import subprocess
import sys
import threading
import types

import cv2
import numpy as np
import pytest
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import checkpoint, scheme
from amsnet_basicsr.pipelines import install_patches
from amsnet_basicsr.data.noisy_image_dataset import NoisyImageDataset
from amsnet_basicsr.errors import ImageError, NonFiniteLossError, OptionError, one_line
from amsnet_basicsr.masks import GeneratorMasks
from amsnet_basicsr.options_check import check_options
from amsnet_basicsr.progress import SafePrefetchGenerator
from amsnet_basicsr.recipes import single_process_options
from basicsr.archs import build_network

from conftest import REPO, write_options
from test_distributed import TINY_NET, noisy_folder, run_train, tiny_options

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


@pytest.mark.slow
def test_train_py_with_zero_usable_images_exits_with_one_line_before_the_first_iteration(tmp_path):
    folder = tmp_path / 'noisy'
    folder.mkdir()
    (folder / 'empty.png').write_bytes(b'')
    option_file = write_options(tmp_path / 'o.yml', tiny_options(folder, 'nothing', iters=2, save_freq=2))
    result = run_train(option_file, tmp_path, expect_ok=False)
    assert result.returncode == 2, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    assert f'error: datasets.train: no usable training image in {folder}: {folder / "empty.png"}: empty file' \
        in result.stderr
    log = next((tmp_path / 'experiments' / 'nothing').glob('train_*.log')).read_text()
    assert 'Start training' not in log and 'no usable training image' in log


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


def test_sizes_not_divisible_by_the_pd_strides_are_padded():
    """The scheme reflect-pads any size: a 29x37 image at stride 2 and a 23x23 crop at stride 5 keep their size."""
    net = build_network(dict(TINY_NET))
    generator = torch.Generator().manual_seed(0)
    noisy = torch.rand(1, 3, 29, 37)
    with torch.no_grad():
        out = scheme.denoise(net, noisy, GeneratorMasks(generator), stride=2, num_branches=2, refine_times=1)
    assert out.shape == noisy.shape and torch.isfinite(out).all()
    crop = torch.rand(2, 3, 23, 23)
    prediction, masked = scheme.masked_training_forward(net, crop, 5, generator, num_branches=2)
    loss = scheme.mask_loss(prediction, crop, masked)
    assert torch.isfinite(loss) and masked.shape[-2:] == crop.shape[-2:]


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


# ------------------------------------------------------------------------------------ option files
def parsed_options(tmp_path, folder, mutate):
    options = single_process_options(tiny_options(folder, 'bad', iters=2, save_freq=2), is_train=True)
    options['auto_resume'] = False
    for dataset in options['datasets'].values():
        dataset['phase'] = 'train'
    mutate(options)
    return options


def _set(path, value):
    def mutate(options):
        node = options
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return mutate


OPTION_CASES = {
    'unknown_denoiser': (_set(['network_g', 'type'], 'NoSuchNet'),
                         ["network_g.type: 'NoSuchNet' is not a registered denoiser", 'Restormer', 'DnCNN', 'UNet']),
    'unknown_denoiser_argument': (_set(['network_g', 'channels'], 3),
                                  ['network_g.channels: not an argument of DnCNN', 'in_nc']),
    'k_below_2': (_set(['amsnet', 'num_branches'], 1), ['amsnet.num_branches (k) must be an integer >= 2, got 1']),
    'mask_ratio': (_set(['amsnet', 'masks_per_pixel'], 2), ['amsnet.masks_per_pixel (m)', '[1, 1]', 'got 2']),
    'r3_probability': (_set(['amsnet', 'r3'], {'enabled': True, 'prob': 1.5}),
                       ['amsnet.r3.prob must be a number in [0, 1], got 1.5']),
    'train_stride': (_set(['amsnet', 'train_stride'], 0), ['amsnet.train_stride must be an integer >= 1, got 0']),
    'test_stride': (_set(['amsnet', 'test_stride'], -2), ['amsnet.test_stride must be an integer >= 1, got -2']),
    'missing_train_path': (_set(['datasets', 'train', 'dataroot_lq'], '/nonexistent/noisy'),
                           ['datasets.train.dataroot_lq: /nonexistent/noisy does not exist']),
    'missing_val_path': (_set(['datasets', 'val'], {'name': 'v', 'type': 'PairedImageDataset', 'phase': 'val',
                                                    'dataroot_gt': '/nonexistent/gt', 'dataroot_lq': '/tmp',
                                                    'io_backend': {'type': 'disk'}}),
                         ['datasets.val.dataroot_gt: /nonexistent/gt does not exist']),
    'missing_pretrained': (_set(['path', 'pretrain_network_g'], '/nonexistent/net.pth'),
                           ['path.pretrain_network_g: /nonexistent/net.pth does not exist']),
    'crop_size': (_set(['datasets', 'train', 'crop_size'], 0), ['datasets.train.crop_size must be an integer >= 1']),
    'stage_loss': (_set(['train', 'pixel_opt', 'type'], 'FinetuneLoss'),
                   ["train.pixel_opt.type must be MaskedL1Loss for train.stage 'mask', got 'FinetuneLoss'"]),
    'optimizer': (_set(['train', 'optim_g', 'type'], 'Adamm'), ["train.optim_g.type: 'Adamm' is not a torch.optim"]),
    'integral_float_total_iter_accepted_but_not_a_fraction': (
        _set(['train', 'total_iter'], 2.5), ['train.total_iter must be an integer >= 1, got 2.5']),
}


@pytest.mark.parametrize('case', sorted(OPTION_CASES))
def test_bad_option_is_refused_naming_the_key_and_allowed_values(tmp_path, case):
    mutate, expected = OPTION_CASES[case]
    options = parsed_options(tmp_path, noisy_folder(tmp_path, 1), mutate)
    with pytest.raises(OptionError) as error:
        check_options(options)
    for text in expected:
        assert text in str(error.value)


def test_an_option_nothing_reads_is_named_in_a_warning_and_the_file_still_works(tmp_path):
    """Benchmark dataset sections of older option files carry io_backend, which those datasets never read."""
    options = parsed_options(tmp_path, noisy_folder(tmp_path, 1), _set(['datasets', 'val'], {
        'name': 'v', 'type': 'PairedFolderDataset', 'phase': 'val', 'dataroot_lq': str(tmp_path),
        'io_backend': {'type': 'disk'}}))
    with pytest.warns(UserWarning, match='datasets.val.io_backend: PairedFolderDataset reads its files itself'):
        check_options(options)


@pytest.mark.slow
def test_train_py_refuses_a_bad_option_before_writing_anything(tmp_path):
    options = tiny_options(noisy_folder(tmp_path, 1), 'badopt', iters=2, save_freq=2)
    options['amsnet']['num_branches'] = 1
    result = run_train(write_options(tmp_path / 'o.yml', options), tmp_path, expect_ok=False)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert 'error: amsnet.num_branches (k) must be an integer >= 2, got 1' in result.stderr
    assert not (tmp_path / 'experiments').exists()


# ------------------------------------------------------------------------------------ non-finite loss
@pytest.mark.slow
def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    """The learning rate jumps to 1e30 at iteration 3 (weights ~1e30), so iteration 4's loss overflows to NaN/Inf."""
    options = tiny_options(noisy_folder(tmp_path, 4), 'blowup', iters=6, save_freq=2)
    options['train']['scheduler'] = {'type': 'MultiStepRestartLR', 'milestones': [2], 'gamma': 1e33}
    result = run_train(write_options(tmp_path / 'o.yml', options), tmp_path, expect_ok=False)
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert 'error: iteration 4: non-finite loss (l_mask = ' in result.stderr
    assert 'The last complete checkpoint is iteration 2' in result.stderr
    experiment = tmp_path / 'experiments' / 'blowup'
    assert sorted(p.name for p in (experiment / 'models').iterdir()) == ['net_g_2.pth']
    assert sorted(p.name for p in (experiment / 'training_states').iterdir()) == ['2.state']
    params = torch.load(experiment / 'models' / 'net_g_2.pth', map_location='cpu')['params']
    assert all(torch.isfinite(value).all() for value in params.values())


def test_non_finite_weights_are_never_written(tmp_path):
    """The save-time check covers a step whose loss was finite but whose update overflowed the weights."""
    net = build_network(dict(TINY_NET))
    with torch.no_grad():
        next(net.parameters())[0] = float('inf')
    (tmp_path / 'models').mkdir()
    model = types.SimpleNamespace(opt={'rank': 0, 'path': {'models': str(tmp_path / 'models'),
                                                          'training_states': str(tmp_path / 'states')}},
                                  get_bare_model=lambda network: network)
    with pytest.raises(NonFiniteLossError, match=r'iteration 3: net_g \[params\] has non-finite weights'):
        checkpoint.save_network(model, net, 'net_g', 3)
    assert not list((tmp_path / 'models').iterdir())


@pytest.mark.slow
@pytest.mark.parametrize('case', ['misspelt network', 'missing dataset'])
def test_test_py_reports_bad_options_in_one_line_and_exits_2(tmp_path, case):
    """test.py runs the same start-up checks as train.py: one line naming the key, exit 2, no results folder."""
    options = {'name': 'checked', 'model_type': 'AMSNetModel', 'num_gpu': 0, 'scale': 1,
               'network_g': dict(TINY_NET), 'path': {'pretrain_network_g': None},
               'datasets': {'test_1': {'name': 'photos', 'type': 'PairedFolderDataset',
                                       'dataroot_lq': str(tmp_path)}},
               'val': {'save_img': True, 'suffix': 'out'}}
    if case == 'misspelt network':
        options['network_g']['type'] = 'DnCNNN'
        expected = "network_g.type: 'DnCNNN' is not a registered denoiser"
    else:
        options['datasets']['test_1']['dataroot_lq'] = str(tmp_path / 'SIDD' / 'missing')
        expected = f'datasets.test_1.dataroot_lq: {tmp_path / "SIDD" / "missing"} does not exist'
    option_file = write_options(tmp_path / 'test.yml', options)
    result = subprocess.run([sys.executable, str(REPO / 'amsnet_basicsr' / 'test.py'), '-opt', str(option_file)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if 'error:' in line or 'Traceback' in line]
    assert lines == [f'amsnet_basicsr/test.py: error: {expected}'] or (
        len(lines) == 1 and lines[0].startswith(f'amsnet_basicsr/test.py: error: {expected}')), result.stderr[-3000:]
    assert not (tmp_path / 'results' / 'checked').exists()
