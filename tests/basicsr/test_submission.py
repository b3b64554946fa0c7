"""Submission writers (SIDD SubmitSrgb.mat + SubmitSrgb.csv, DND bundle) read back, and the collector/mixin on
datasets."""
import copy

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from torch.utils.data import DataLoader

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.errors import DataError
from amsnet_basicsr.models.amsnet_model import AMSNetModel
from amsnet_basicsr.models.validation import ValidationMixin
from amsnet_basicsr.submission import (
    DEFAULT_OPTIONAL_DATA,
    SIDD_CSV_HEADER,
    SubmissionCollector,
    build_submission_collector,
    read_sidd_csv,
    to_uint8_hwc,
    write_dnd_image,
    write_sidd_csv,
    write_sidd_submission,
)

from basicsr.data import build_dataset
from basicsr.utils import tensor2img

TINY_NET = {'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': 3, 'act_mode': 'R'}


def test_sidd_submission_file_layout(tmp_path):
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (40, 32, 4, 5, 3), dtype=np.uint8)  # the real 40x32 cell grid, tiny blocks
    path = write_sidd_submission(str(tmp_path / 'out' / 'SubmitSrgb.mat'), blocks, 1.25,
                                 {'Authors': 'A. Author', 'Venue': 'test'})
    mat = scipy.io.loadmat(path)
    assert {'DenoisedBlocksSrgb', 'TimeMPSrgb', 'OptionalData'} <= set(mat)
    cells = mat['DenoisedBlocksSrgb']
    assert cells.dtype == object and cells.shape == (40, 32)
    for image, block in np.ndindex(40, 32):
        assert cells[image, block].dtype == np.uint8 and cells[image, block].shape == (4, 5, 3)
        np.testing.assert_array_equal(cells[image, block], blocks[image, block])
    assert mat['TimeMPSrgb'].item() == 1.25
    optional = mat['OptionalData'][0, 0]
    assert set(optional.dtype.names) == {'MethodName', 'Authors', 'PaperTitle', 'Venue'}
    assert optional['MethodName'].item() == DEFAULT_OPTIONAL_DATA['MethodName']
    assert optional['Authors'].item() == 'A. Author' and optional['Venue'].item() == 'test'
    with pytest.raises(ValueError, match='uint8'):
        write_sidd_submission(str(tmp_path / 'x.mat'), blocks.astype(np.float32), 1.0)


def test_sidd_csv_round_trip(tmp_path):
    """SubmitSrgb.csv: header exactly ID,BLOCK; IDs 0..1279 in the order of the 40x32 blocks (image * 32 + block);
    BLOCK the base64 of the raw uint8 bytes (C order, RGB); read_sidd_csv gives back the exact blocks."""
    import base64
    rng = np.random.default_rng(3)
    blocks = rng.integers(0, 256, (40, 32, 256, 256, 3), dtype=np.uint8)  # the full benchmark: ~340 MB of CSV
    path = write_sidd_csv(str(tmp_path / 'out' / 'SubmitSrgb.csv'), blocks)
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['SubmitSrgb.csv']  # no temporary file left
    decoded = read_sidd_csv(path)
    assert decoded.dtype == np.uint8 and decoded.shape == (40, 32, 256, 256, 3)
    np.testing.assert_array_equal(decoded, blocks)
    with open(path) as handle:
        assert handle.readline() == SIDD_CSV_HEADER + '\n' == 'ID,BLOCK\n'
        ids = []
        for row, line in enumerate(handle):
            ident, encoded = line.rstrip('\n').split(',')
            ids.append(int(ident))
            if row in (0, 33, 1279):  # raw bytes of block (row // 32, row % 32), independent of read_sidd_csv
                assert base64.b64decode(encoded) == blocks[row // 32, row % 32].tobytes()
    assert ids == list(range(1280))


def test_sidd_csv_reader_rejects_malformed_files(tmp_path):
    blocks = np.arange(2 * 3 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 3, 2, 2, 3)
    good = write_sidd_csv(str(tmp_path / 'good.csv'), blocks)
    np.testing.assert_array_equal(read_sidd_csv(good, blocks_per_image=3, block_shape=(2, 2, 3)), blocks)
    lines = open(good).read().splitlines()
    cases = {'header': ['Id,Block'] + lines[1:], 'order': [lines[0], lines[2], lines[1]] + lines[3:],
             'size': lines, 'count': lines[:-1], 'base64': lines[:1] + ['0,***'] + lines[2:]}
    messages = {'header': "header must be 'ID,BLOCK'", 'order': "ID must be 0, got '1'", 'size': 'expected 48',
                'count': 'not a positive multiple of 3', 'base64': 'not base64'}
    for case, content in cases.items():
        path = tmp_path / f'{case}.csv'
        path.write_text('\n'.join(content) + '\n')
        shape = (4, 4, 3) if case == 'size' else (2, 2, 3)
        with pytest.raises(DataError, match=messages[case]):
            read_sidd_csv(str(path), blocks_per_image=3, block_shape=shape)


def test_dnd_bundle_file_layout(tmp_path):
    rng = np.random.default_rng(1)
    crops = [rng.random((7 + k % 3, 9, 3)).astype(np.float32) for k in range(20)]
    path = write_dnd_image(str(tmp_path / 'bundled'), 4, crops)
    assert path.endswith('bundled/0005.mat')
    mat = scipy.io.loadmat(path)
    cells = mat['Idenoised']
    assert cells.dtype == object and cells.shape == (1, 20)
    for crop, cell in zip(crops, cells[0]):
        assert cell.dtype == np.float32
        np.testing.assert_array_equal(cell, crop)
    assert not mat['israw'].item() and dict((n, c) for n, _, c in scipy.io.whosmat(path))['israw'] == 'logical'
    assert mat['eval_version'].item() == '1.0'


def fake_sidd_benchmark(root, images=2, blocks=3, side=8):
    noisy = np.random.default_rng(2).integers(0, 256, (images, blocks, side, side, 3), dtype=np.uint8)
    scipy.io.savemat(root / 'BenchmarkNoisyBlocksSrgb.mat', {'BenchmarkNoisyBlocksSrgb': noisy})
    return noisy


def fake_denoiser(lq):
    """A deterministic stand-in for the model output, with values outside [0, 1] to exercise the clamp."""
    return lq.flip(-1) * 1.3 - 0.1


def test_sidd_collector_stores_outputs_with_tensor2img_rounding(tmp_path):
    fake_sidd_benchmark(tmp_path)
    dataset = build_dataset({'name': 'SIDD_bench', 'type': 'SIDDBenchmarkDataset', 'phase': 'test',
                             'dataroot': str(tmp_path), 'submission': 'sidd'})
    collector = build_submission_collector(dataset, {'path': {'results_root': str(tmp_path / 'results')}})
    expected = np.zeros((2, 3, 8, 8, 3), np.uint8)
    for data in DataLoader(dataset, batch_size=1):
        output = collector.run_timed(lambda data=data: fake_denoiser(data['lq']))
        collector.add(data, output)
        expected[int(data['image_index']), int(data['block_index'])] = tensor2img(output, rgb2bgr=False)
    path, csv_path = collector.finalize()  # both submission formats, side by side
    assert path == str(tmp_path / 'results' / 'SIDD_bench' / 'SubmitSrgb.mat')
    assert csv_path == str(tmp_path / 'results' / 'SIDD_bench' / 'SubmitSrgb.csv')
    assert sorted(p.name for p in (tmp_path / 'results' / 'SIDD_bench').iterdir()) == ['SubmitSrgb.csv',
                                                                                       'SubmitSrgb.mat']
    cells = scipy.io.loadmat(path)['DenoisedBlocksSrgb']
    assert cells.shape == (2, 3)
    for image, block in np.ndindex(2, 3):
        np.testing.assert_array_equal(cells[image, block], expected[image, block])
    np.testing.assert_array_equal(read_sidd_csv(csv_path, blocks_per_image=3, block_shape=(8, 8, 3)), expected)
    assert collector.timed_calls == 6 and collector.time_mp > 0
    assert collector.time_mp == pytest.approx(collector.seconds / (6 * 8 * 8 / 1e6))

    incomplete = build_submission_collector(dataset, {'path': {'results_root': str(tmp_path / 'r2')}})
    incomplete.add({'image_index': 0, 'block_index': 0}, torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match='5 of 6 blocks missing'):
        incomplete.finalize()
    subset = build_dataset({'name': 'SIDD_bench', 'type': 'SIDDBenchmarkDataset', 'phase': 'test',
                            'dataroot': str(tmp_path), 'submission': 'sidd', 'num_blocks': 2})
    with pytest.raises(ValueError, match='remove num_blocks'):
        build_submission_collector(subset, {'path': {'results_root': str(tmp_path)}})
    plain = build_dataset({'name': 'x', 'type': 'SIDDBenchmarkDataset', 'phase': 'test', 'dataroot': str(tmp_path)})
    assert build_submission_collector(plain, {'path': {}}) is None


def test_dnd_collector_writes_each_image_when_its_crops_are_in(tmp_path):
    collector = SubmissionCollector('dnd', str(tmp_path / 'bundled'), num_images=2, blocks_per_image=3)
    outputs = {}
    for image, box in np.ndindex(2, 3):
        output = torch.rand(1, 3, 5 + box, 6) * 1.2 - 0.1
        outputs[image, box] = output[0].clamp(0, 1).numpy().transpose(1, 2, 0)
        collector.add({'image_index': torch.tensor([image]), 'block_index': torch.tensor([box])}, output)
        assert (tmp_path / 'bundled' / f'{image + 1:04d}.mat').exists() == (box == 2)
    assert collector.finalize() == [str(tmp_path / 'bundled' / '0001.mat'), str(tmp_path / 'bundled' / '0002.mat')]
    for image in range(2):
        cells = scipy.io.loadmat(tmp_path / 'bundled' / f'{image + 1:04d}.mat')['Idenoised'][0]
        for box in range(3):
            np.testing.assert_array_equal(cells[box], outputs[image, box])
    with pytest.raises(ValueError, match='2 images incomplete'):
        SubmissionCollector('dnd', str(tmp_path / 'b2'), 2, 3).finalize()


if issubclass(AMSNetModel, ValidationMixin):
    SubmittingModel = AMSNetModel
else:  # the model without the hook: mix it in here, as AMSNetModel(ValidationMixin, SRModel) does
    SubmittingModel = type('SubmittingModel', (ValidationMixin, AMSNetModel), {})


def model_options(tmp_path):
    return {
        'name': 'tiny', 'model_type': 'AMSNetModel', 'num_gpu': 0, 'is_train': False, 'dist': False, 'rank': 0,
        'world_size': 1, 'amsnet': {'test_stride': 2, 'num_branches': 2, 'seed': 0},
        'network_g': dict(TINY_NET),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'results_root': str(tmp_path / 'results'),
                 'visualization': str(tmp_path / 'results' / 'visualization')},
        'val': {'save_img': False, 'suffix': None,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}},
    }


def test_mixin_writes_submissions_and_skips_metrics_without_gt(tmp_path, fake_dnd):
    """SRModel's own validation loop + the mixin: SubmitSrgb.mat = the model's outputs; DND bundle likewise."""
    fake_sidd_benchmark(tmp_path, side=12)
    opt = model_options(tmp_path)
    model = SubmittingModel(opt)
    sidd = build_dataset({'name': 'SIDD_bench', 'type': 'SIDDBenchmarkDataset', 'phase': 'test',
                          'dataroot': str(tmp_path), 'submission': 'sidd'})
    metrics = copy.deepcopy(opt['val']['metrics'])
    model.validation(DataLoader(sidd, batch_size=1), current_iter='tiny', tb_logger=None, save_img=False)
    assert opt['val']['metrics'] == metrics  # restored after the GT-less set
    assert set(model.metric_results) == {'masked_holdout'}  # psnr needs GT; the clean-free loss replaces it
    cells = scipy.io.loadmat(tmp_path / 'results' / 'SIDD_bench' / 'SubmitSrgb.mat')['DenoisedBlocksSrgb']
    np.testing.assert_array_equal(read_sidd_csv(tmp_path / 'results' / 'SIDD_bench' / 'SubmitSrgb.csv',
                                                blocks_per_image=3, block_shape=(12, 12, 3)),
                                  np.stack([np.stack(list(row)) for row in cells]))
    for item in sidd:
        model.feed_data({'lq': item['lq'][None]})
        model.test()
        np.testing.assert_array_equal(cells[item['image_index'], item['block_index']], to_uint8_hwc(model.output[0]))

    fake_dnd(tmp_path / 'dnd')
    dnd = build_dataset({'name': 'DND', 'type': 'DNDDataset', 'phase': 'test', 'dataroot_lq': str(tmp_path / 'dnd'),
                         'submission': 'dnd'})
    model.validation(DataLoader(dnd, batch_size=1), current_iter='tiny', tb_logger=None, save_img=False)
    bundle = tmp_path / 'results' / 'DND' / 'bundled'
    assert sorted(p.name for p in bundle.iterdir()) == ['0001.mat', '0002.mat']
    first = scipy.io.loadmat(bundle / '0001.mat')['Idenoised'][0]
    model.feed_data({'lq': dnd[1]['lq'][None]})
    model.test()
    np.testing.assert_array_equal(first[1], model.output[0].clamp(0, 1).numpy().transpose(1, 2, 0))
    assert h5py.is_hdf5(bundle / '0001.mat') is False  # MATLAB v5, as the DND kit's bundle_submissions_srgb writes


@pytest.mark.slow
def test_test_py_writes_the_sidd_submission_with_the_shipped_options(tmp_path, write_options, run_entry_point):
    """options/test_SIDD_benchmark.yml through test.py (tiny random DnCNN, fake 2x3 blocks): SubmitSrgb.mat holds the
    saved outputs, and the log says where it went. Needs AMSNetModel to mix in ValidationMixin."""
    import json
    import re

    import cv2
    import yaml

    from helpers import REPO

    from basicsr.utils.options import ordered_yaml

    fake_sidd_benchmark(tmp_path, side=12)
    options = yaml.load((REPO / 'options' / 'test_SIDD_benchmark.yml').read_text(), Loader=ordered_yaml()[0])
    options.update(name='tiny_bench', num_gpu=0, network_g=TINY_NET)
    options['path']['pretrain_network_g'] = None
    options['amsnet'].update(size_multiple=1, r3={'enabled': True, 'times': 2, 'prob': 0.16})
    options['datasets']['test_1']['dataroot'] = str(tmp_path)
    options['val'].update(pbar=False, save_img=True)
    run_entry_point('test.py', write_options(tmp_path / 'bench.yml', json.loads(json.dumps(options))), tmp_path)
    results = tmp_path / 'results' / 'tiny_bench'
    submission = results / 'SIDD_benchmark' / 'SubmitSrgb.mat'
    log = next(results.glob('test_tiny_bench_*.log')).read_text()
    assert f'submission written to {submission} and {submission.with_suffix(".csv")}' in log
    mat = scipy.io.loadmat(submission)
    cells = mat['DenoisedBlocksSrgb']
    assert cells.shape == (2, 3) and float(re.search(r'([0-9.]+) s per megapixel', log).group(1)) > 0
    assert mat['TimeMPSrgb'].item() > 0
    for image, block in np.ndindex(2, 3):  # the saved PNG is tensor2img of the same output: same pixels
        saved = cv2.imread(str(results / 'visualization' / 'SIDD_benchmark' /
                               f'SIDD_bench_{image:02d}_{block:02d}_amsnet.png'))
        np.testing.assert_array_equal(cells[image, block], saved[..., ::-1])
    np.testing.assert_array_equal(read_sidd_csv(submission.with_suffix('.csv'), blocks_per_image=3,
                                                block_shape=(12, 12, 3)), np.stack([np.stack(list(r)) for r in cells]))
