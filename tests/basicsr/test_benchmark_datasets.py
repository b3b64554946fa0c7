"""Evaluation datasets on tiny synthetic files in the real formats: SIDD .mat (v5, and v7.3), DND (v7.3
with object references), PolyU JPEG pairs, generic paired folders; and test.py end to end on a fake SIDD val pair."""
import json
import re

import cv2
import numpy as np
import pytest
import scipy.io
import torch
import yaml

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.data.benchmark_datasets import read_dnd_boxes
from amsnet_basicsr.errors import DataError

from helpers import REPO, save_v73

from basicsr.data import build_dataset
from basicsr.metrics import calculate_psnr
from basicsr.utils.options import ordered_yaml

IMAGES, BLOCKS, SIDE = 3, 4, 16  # SIDD: 40 x 32 x 256 x 256 x 3, scaled down
RED = (255, 0, 0)
TINY_NET = {'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': 3, 'act_mode': 'R'}


def sidd_blocks(seed):
    """uint8 (images, blocks, side, side, 3) RGB; block (0, 0) has a pure red top-left corner."""
    blocks = np.random.default_rng(seed).integers(0, 256, (IMAGES, BLOCKS, SIDE, SIDE, 3), dtype=np.uint8)
    blocks[0, 0, :4, :4] = RED
    return blocks


@pytest.fixture
def sidd_val(tmp_path):
    noisy, gt = sidd_blocks(1), sidd_blocks(2)
    scipy.io.savemat(tmp_path / 'ValidationNoisyBlocksSrgb.mat', {'ValidationNoisyBlocksSrgb': noisy})
    scipy.io.savemat(tmp_path / 'ValidationGtBlocksSrgb.mat', {'ValidationGtBlocksSrgb': gt})
    return tmp_path, noisy, gt


def dataset(**opt):
    return build_dataset({'name': 'test', 'phase': 'test', **opt})


def as_hwc_uint8(tensor):
    return (tensor.numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)


def test_sidd_validation_blocks_in_flat_order_as_rgb_tensors(sidd_val):
    root, noisy, gt = sidd_val
    data = dataset(type='SIDDValidationDataset', dataroot=str(root))
    assert len(data) == IMAGES * BLOCKS and data.has_gt
    for flat in range(len(data)):
        item = data[flat]
        image, block = divmod(flat, BLOCKS)
        assert (item['image_index'], item['block_index']) == (image, block)
        assert item['lq_path'] == item['gt_path'] == f'SIDD_val_{image:02d}_{block:02d}'
        for key, source in (('lq', noisy), ('gt', gt)):
            tensor = item[key]
            assert tensor.dtype == torch.float32 and tensor.shape == (3, SIDE, SIDE)
            assert 0 <= tensor.min() and tensor.max() <= 1
            np.testing.assert_array_equal(as_hwc_uint8(tensor), source[image, block])
    red = data[0]['lq'][:, :4, :4]
    assert (red[0] == 1).all() and (red[1:] == 0).all()  # channel 0 is red: no BGR swap
    assert len({data[i]['lq_path'] for i in range(len(data))}) == len(data)


def test_sidd_subsets_and_explicit_files(sidd_val):
    root, noisy, _ = sidd_val
    files = dict(dataroot_lq=str(root / 'ValidationNoisyBlocksSrgb.mat'),
                 dataroot_gt=str(root / 'ValidationGtBlocksSrgb.mat'))
    subset = dataset(type='SIDDValidationDataset', num_blocks=5, **files)
    expected = np.unique(np.linspace(0, IMAGES * BLOCKS - 1, 5).round().astype(int))
    assert len(subset) == len(expected)
    for item, flat in zip(subset, expected):
        assert item['image_index'] * BLOCKS + item['block_index'] == flat
        np.testing.assert_array_equal(as_hwc_uint8(item['lq']), noisy.reshape(-1, SIDE, SIDE, 3)[flat])
    chosen = dataset(type='SIDDValidationDataset', block_indices=[7, 2], **files)
    assert [item['lq_path'] for item in chosen] == ['SIDD_val_01_03', 'SIDD_val_00_02']
    with pytest.raises(DataError, match=r'block_indices \[99\] out of range'):
        dataset(type='SIDDValidationDataset', block_indices=[99], **files)
    noisy_only = dataset(type='SIDDValidationDataset', dataroot_lq=files['dataroot_lq'])
    assert not noisy_only.has_gt and 'gt' not in noisy_only[0]


def test_sidd_errors_name_the_file_and_variable(tmp_path, sidd_val):
    root, _, _ = sidd_val
    with pytest.raises(DataError, match='BenchmarkNoisyBlocksSrgb.mat does not exist'):
        dataset(type='SIDDBenchmarkDataset', dataroot=str(root))
    scipy.io.savemat(tmp_path / 'wrong.mat', {'SomethingElse': np.zeros((2, 2), np.uint8)})
    with pytest.raises(DataError, match=r"wrong.mat has no variable 'ValidationNoisyBlocksSrgb'.*SomethingElse"):
        dataset(type='SIDDValidationDataset', dataroot_lq=str(tmp_path / 'wrong.mat'))
    scipy.io.savemat(tmp_path / 'short.mat', {'ValidationGtBlocksSrgb': sidd_blocks(3)[:, :2]})
    with pytest.raises(DataError, match='short.mat: ValidationGtBlocksSrgb has shape'):
        dataset(type='SIDDValidationDataset', dataroot_lq=str(root / 'ValidationNoisyBlocksSrgb.mat'),
                dataroot_gt=str(tmp_path / 'short.mat'))


def test_sidd_benchmark_noisy_only_and_v73_files(tmp_path):
    noisy = sidd_blocks(4)
    save_v73(tmp_path / 'BenchmarkNoisyBlocksSrgb.mat', 'BenchmarkNoisyBlocksSrgb', noisy)
    data = dataset(type='SIDDBenchmarkDataset', dataroot=str(tmp_path))
    assert len(data) == IMAGES * BLOCKS and not data.has_gt
    last = data[len(data) - 1]
    assert set(last) == {'lq', 'lq_path', 'image_index', 'block_index'}
    assert last['lq_path'] == f'SIDD_bench_{IMAGES - 1:02d}_{BLOCKS - 1:02d}'
    np.testing.assert_array_equal(as_hwc_uint8(last['lq']), noisy[-1, -1])
    assert (data[0]['lq'][0, :4, :4] == 1).all() and (data[0]['lq'][1:, :4, :4] == 0).all()


def test_dnd_crops_from_bounding_boxes(tmp_path, fake_dnd):
    images, boxes = fake_dnd(tmp_path)
    np.testing.assert_array_equal(read_dnd_boxes(str(tmp_path / 'info.mat')), np.stack(boxes).astype(int))
    data = dataset(type='DNDDataset', dataroot_lq=str(tmp_path))
    assert len(data) == 2 * 3 and not data.has_gt
    for index in range(len(data)):
        item = data[index]
        image, box = divmod(index, 3)
        assert (item['image_index'], item['block_index']) == (image, box)
        assert item['lq_path'] == f'DND_{image + 1:04d}_{box + 1:02d}'
        r1, c1, r2, c2 = boxes[image][box].astype(int)
        expected = images[image][r1 - 1:r2, c1 - 1:c2]  # 1-based inclusive
        assert item['lq'].dtype == torch.float32 and item['lq'].shape == (3, 7, 9)
        np.testing.assert_array_equal(item['lq'].numpy().transpose(1, 2, 0), expected)
    red = data[0]['lq'][:, :3, :3]
    assert (red[0] == 1).all() and (red[1:] == 0).all()
    (tmp_path / 'images_srgb' / '0002.mat').unlink()
    with pytest.raises(DataError, match='0002.mat'):
        dataset(type='DNDDataset', dataroot_lq=str(tmp_path))


def write_jpeg_pair(folder, stem, rng, lq_suffix='_real', gt_suffix='_mean', ext='.JPG'):
    clean = np.zeros((24, 32, 3), np.uint8)
    clean[..., 2] = 230  # red in OpenCV's BGR
    noisy = np.clip(clean + rng.integers(-10, 10, clean.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(folder / f'{stem}{lq_suffix}{ext}'), noisy)
    cv2.imwrite(str(folder / f'{stem}{gt_suffix}{ext}'), clean)


def test_polyu_pairs_real_and_mean_jpegs(tmp_path):
    folder = tmp_path / 'CroppedImages'
    folder.mkdir()
    rng = np.random.default_rng(0)
    stems = ['Nikon800_2_200_1600_plug_3', 'Canon5D2_5_160_3200_chair_11', 'Sony_1_100_800_toy_2']
    for stem in stems:
        write_jpeg_pair(folder, stem, rng)
    cv2.imwrite(str(folder / 'README.png'), np.zeros((4, 4, 3), np.uint8))  # neither _real nor _mean: ignored
    data = dataset(type='PolyUDataset', dataroot_lq=str(folder))
    assert len(data) == 3 and data.has_gt
    assert [item['lq_path'] for item in data] == [str(folder / f'{s}_real.JPG') for s in sorted(stems)]
    for item in data:
        assert item['gt_path'] == item['lq_path'][:-len('_real.JPG')] + '_mean.JPG'
        bgr = cv2.imread(item['lq_path'])
        np.testing.assert_array_equal(as_hwc_uint8(item['lq']), bgr[..., ::-1])
        for key in ('lq', 'gt'):
            assert item[key].shape == (3, 24, 32)
            assert item[key][0].mean() > 0.8 and item[key][1:].mean() < 0.1  # red stays in channel 0
    (folder / f'{stems[0]}_mean.JPG').unlink()
    with pytest.raises(DataError, match=f'without a reference.*{stems[0]}_real.JPG'):
        dataset(type='PolyUDataset', dataroot_lq=str(folder))


def test_generic_paired_folders_pixel_exact(tmp_path):
    (tmp_path / 'noisy').mkdir()
    (tmp_path / 'clean').mkdir()
    rng = np.random.default_rng(1)
    pairs = {}
    for stem in ('b', 'a'):
        noisy, clean = (rng.integers(0, 256, (10, 12, 3), dtype=np.uint8) for _ in range(2))
        cv2.imwrite(str(tmp_path / 'noisy' / f'{stem}.png'), noisy)
        cv2.imwrite(str(tmp_path / 'clean' / f'{stem}.PNG'), clean)
        pairs[stem] = noisy, clean
    data = dataset(type='PairedFolderDataset', dataroot_lq=str(tmp_path / 'noisy'),
                   dataroot_gt=str(tmp_path / 'clean'))
    assert [item['lq_path'] for item in data] == [str(tmp_path / 'noisy' / 'a.png'), str(tmp_path / 'noisy' / 'b.png')]
    for item, stem in zip(data, 'ab'):
        np.testing.assert_array_equal(as_hwc_uint8(item['lq']), pairs[stem][0][..., ::-1])
        np.testing.assert_array_equal(as_hwc_uint8(item['gt']), pairs[stem][1][..., ::-1])
    noisy_only = dataset(type='PairedFolderDataset', dataroot_lq=str(tmp_path / 'noisy'))
    assert not noisy_only.has_gt and set(noisy_only[0]) == {'lq', 'lq_path'}


def shipped_options(name):
    return yaml.load((REPO / 'options' / name).read_text(), Loader=ordered_yaml()[0])


def test_shipped_test_options_build_their_datasets(tmp_path, sidd_val, fake_dnd):
    """options/test_*.yml with `datasets/` pointed at tiny fake copies: every test set builds and yields an item."""
    root, noisy, _ = sidd_val
    scipy.io.savemat(root / 'BenchmarkNoisyBlocksSrgb.mat', {'BenchmarkNoisyBlocksSrgb': noisy})
    fake_dnd(tmp_path / 'DND')
    (tmp_path / 'PolyU' / 'CroppedImages').mkdir(parents=True)
    write_jpeg_pair(tmp_path / 'PolyU' / 'CroppedImages', 'Canon5D2_5_160_3200_chair_11', np.random.default_rng(0))
    fake = {'datasets/SIDD': str(root), 'datasets/DND': str(tmp_path / 'DND'),
            'datasets/PolyU': str(tmp_path / 'PolyU')}
    expected = {'test_SIDD.yml': ('SIDDValidationDataset', 12, True), 'test_SIDD_benchmark.yml':
                ('SIDDBenchmarkDataset', 12, False), 'test_DND.yml': ('DNDDataset', 6, False),
                'test_PolyU.yml': ('PolyUDataset', 1, True)}
    for name, (kind, count, has_gt) in expected.items():
        options = shipped_options(name)
        assert ('metrics' in options['val']) == has_gt, name  # metrics only where there is a reference
        for dataset_opt in options['datasets'].values():
            for key in ('dataroot', 'dataroot_lq'):
                if key in dataset_opt:
                    prefix = next(p for p in fake if dataset_opt[key].startswith(p))
                    dataset_opt[key] = dataset_opt[key].replace(prefix, fake[prefix])
            data = build_dataset(dict(dataset_opt, phase='test'))
            assert (type(data).__name__, len(data), data.has_gt) == (kind, count, has_gt), name
            assert data[0]['lq'].shape[0] == 3


@pytest.mark.slow
def test_test_py_with_the_shipped_sidd_options_on_a_fake_validation_pair(tmp_path, sidd_val, write_options,
                                                                        run_entry_point):
    """options/test_SIDD.yml through test.py (tiny random DnCNN instead of the trained Restormer, fake 3x4 blocks):
    PSNR/SSIM over every block with the paper's settings (8-bit RGB, no border crop), and one saved image per block."""
    root, _, gt = sidd_val
    options = shipped_options('test_SIDD.yml')
    options.update(name='tiny_sidd', num_gpu=0, network_g=TINY_NET)
    options['path']['pretrain_network_g'] = None
    options['amsnet'].update(size_multiple=1, r3={'enabled': True, 'times': 2, 'prob': 0.16})
    options['datasets']['test_1']['dataroot'] = str(root)
    options['val']['pbar'] = False
    run_entry_point('test.py', write_options(tmp_path / 'test_sidd.yml', json.loads(json.dumps(options))), tmp_path)
    results = tmp_path / 'results' / 'tiny_sidd'
    saved = sorted(p.name for p in (results / 'visualization' / 'SIDD_val').iterdir())
    assert saved == [f'SIDD_val_{i:02d}_{b:02d}_amsnet.png' for i in range(IMAGES) for b in range(BLOCKS)]
    log = next(results.glob('test_tiny_sidd_*.log')).read_text()
    assert f'Number of test images in SIDD_val: {IMAGES * BLOCKS}' in log
    # the logged PSNR is BasicSR's calculate_psnr (RGB, no crop) of the saved uint8 outputs vs GT, averaged
    psnr = [calculate_psnr(cv2.imread(str(results / 'visualization' / 'SIDD_val' / name)), gt[i, b][..., ::-1], 0)
            for name, (i, b) in zip(saved, np.ndindex(IMAGES, BLOCKS))]
    logged = float(re.search(r'# psnr: ([0-9.]+)', log).group(1))
    assert logged == pytest.approx(np.mean(psnr), abs=1e-4)
    assert re.search(r'# ssim: 0\.[0-9]+', log)
