"""scripts/prepare_sidd.py on a fake SIDD-Medium sRGB tree (real folder/file naming, small images)."""
import re
import subprocess
import sys

import cv2
import lmdb
import numpy as np
import pytest

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.data import sidd_prepare
from amsnet_basicsr.data.sidd_prepare import LayoutError, crop_boxes, crop_grid, prepare_sidd

from helpers import REPO

from basicsr.data import build_dataset
from basicsr.data.data_util import paths_from_lmdb
from basicsr.utils import imfrombytes

SCENES = {  # scene folder -> (instance id, noisy image size); one size a multiple of the grid, one not
    '0001_001_S6_00100_00060_3200_L': ('0001', (70, 90)),
    '0002_001_S6_00100_00020_3200_N': ('0002', (64, 56)),
}
CAPTURES = ('010', '011')
CROP, STEP = 32, 24


class SimulatedKill(Exception):
    """Stands in for a kill during packing."""


def make_sidd_tree(root, gt='garbage'):
    """SIDD_Medium_Srgb/Data/<scene>/<inst>_{NOISY,GT}_SRGB_01x.PNG; gt: 'garbage' (not an image), 'absent', 'png'."""
    rng = np.random.default_rng(0)
    data = root / 'SIDD_Medium_Srgb' / 'Data'
    images = {}
    for scene, (inst, (height, width)) in SCENES.items():
        (data / scene).mkdir(parents=True)
        for capture in CAPTURES:
            noisy = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            noisy[:8, :8] = (0, 0, 255)  # a red corner (BGR on disk via OpenCV)
            assert cv2.imwrite(str(data / scene / f'{inst}_NOISY_SRGB_{capture}.PNG'), noisy)
            clean = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            gt_path = data / scene / f'{inst}_GT_SRGB_{capture}.PNG'
            if gt == 'png':
                assert cv2.imwrite(str(gt_path), clean)
            elif gt == 'garbage':
                gt_path.write_bytes(b'this is not a PNG file')
            images[f'{scene}_{capture}'] = (noisy, clean)
    return root / 'SIDD_Medium_Srgb', images


def expected_crops(images, which=0):
    """key -> expected crop (BGR, as OpenCV reads it) from the crop grid, in the order the script writes."""
    out = {}
    for prefix, pair in sorted(images.items()):
        image = pair[which]
        for index, (top, left) in enumerate(crop_boxes(image.shape[0], image.shape[1], CROP, STEP)):
            out[f'{prefix}_s{index:04d}'] = image[top:top + CROP, left:left + CROP]
    return out


def run_script(*args):
    """The script as users run it (a subprocess)."""
    return subprocess.run([sys.executable, str(REPO / 'scripts' / 'prepare_sidd.py'), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def load_cli():
    from amsnet_basicsr.data import sidd_prepare
    return sidd_prepare


def run_cli(capsys, *args):
    """The script's main() in this process (no interpreter start-up): (exit code, stdout, stderr)."""
    code = load_cli().main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_lmdb(path):
    """(keys from meta_info.txt as BasicSR lists them, number of LMDB entries, key -> decoded BGR crop)."""
    keys = paths_from_lmdb(str(path))
    with lmdb.open(str(path), readonly=True, lock=False, readahead=False) as env:
        entries = env.stat()['entries']
        with env.begin() as txn:
            crops = {key: imfrombytes(txn.get(key.encode('ascii'))) for key in keys}
    return keys, entries, crops


def test_crop_grid_covers_every_pixel_with_flush_last_crop():
    for size in range(CROP, 4 * CROP):
        offsets = crop_grid(size, CROP, STEP)
        assert offsets[0] == 0 and offsets[-1] == size - CROP
        assert all(0 < b - a <= STEP for a, b in zip(offsets, offsets[1:]))
        covered = np.zeros(size, bool)
        for offset in offsets:
            covered[offset:offset + CROP] = True
        assert covered.all()
    assert crop_grid(512 + 384 * 3, 512, 384) == [0, 384, 768, 1152]  # exact multiple: no extra crop
    with pytest.raises(ValueError, match='smaller than crop size'):
        crop_grid(CROP - 1, CROP, STEP)


@pytest.mark.slow
def test_default_mode_packs_noisy_crops_exactly_and_never_reads_gt(tmp_path):
    root, images = make_sidd_tree(tmp_path, gt='garbage')  # GT files exist but cannot be decoded
    for path in (root / 'Data' / '0002_001_S6_00100_00020_3200_N').glob('*_GT_*'):
        path.unlink()  # ... and in one scene they are absent
    out = tmp_path / 'datasets' / 'SIDD' / 'SIDD_Medium_Srgb_noisy_512.lmdb'
    result = run_script('--input', root, '--output', out, '--crop-size', CROP, '--step', STEP, '--workers', 2)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout

    expected = expected_crops(images)
    keys, entries, crops = read_lmdb(out)
    assert keys == list(expected) and entries == len(expected)
    for key, crop in crops.items():
        np.testing.assert_array_equal(crop, expected[key])
    for key in keys:
        assert '.' not in key
    meta_lines = (out / 'meta_info.txt').read_text().splitlines()
    assert meta_lines == [f'{key}.png ({CROP},{CROP},3) 1' for key in expected]
    assert not (tmp_path / 'datasets' / 'SIDD' / 'SIDD_Medium_Srgb_noisy_512.lmdb.partial').exists()

    # the training dataset reads it (BasicSR lmdb backend), RGB: the red corner of the first crop is red
    dataset = build_dataset({'name': 'crops', 'type': 'NoisyImageDataset', 'phase': 'train', 'dataroot_lq': str(out),
                             'io_backend': {'type': 'lmdb'}, 'crop_size': CROP, 'use_hflip': False,
                             'use_rot': False})
    assert len(dataset) == len(expected)
    first = dataset[0]['lq']
    assert first.shape == (3, CROP, CROP)
    assert (first[:, :8, :8] == first.new_tensor([1., 0., 0.])[:, None, None]).all()


def test_default_mode_opens_no_gt_file(tmp_path, monkeypatch):
    root, images = make_sidd_tree(tmp_path, gt='png')
    opened = []
    real_open = open

    def spy_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr('builtins.open', spy_open)  # image_io.read and the header check both open the file
    summary = prepare_sidd(str(root), str(tmp_path / 'n.lmdb'), CROP, STEP, workers=0, progress=False)
    assert summary['crops'] == len(expected_crops(images))
    noisy_reads = [path for path in opened if '_NOISY_SRGB_' in path]
    assert len(noisy_reads) >= 2 * len(images)  # header + pixels of every noisy image
    assert not [path for path in opened if '_GT_' in path]


def test_with_gt_packs_gt_crops_under_the_same_keys(tmp_path):
    root, images = make_sidd_tree(tmp_path, gt='png')
    out = tmp_path / 'SIDD_Medium_Srgb_noisy_512.lmdb'
    prepare_sidd(str(root), str(out), CROP, STEP, workers=2, with_gt=True, progress=False)
    noisy_keys, _, noisy = read_lmdb(out)
    gt_keys, gt_entries, gt = read_lmdb(tmp_path / 'SIDD_Medium_Srgb_gt_512.lmdb')
    expected_gt = expected_crops(images, which=1)
    assert gt_keys == noisy_keys == list(expected_gt) and gt_entries == len(expected_gt)
    for key in gt_keys:
        np.testing.assert_array_equal(gt[key], expected_gt[key])
    expected_noisy = expected_crops(images)
    assert all(np.array_equal(noisy[key], expected_noisy[key]) for key in noisy_keys)


def test_with_gt_fails_cleanly_on_an_unreadable_or_missing_gt(tmp_path, capsys):
    root, _ = make_sidd_tree(tmp_path, gt='garbage')
    code, _, err = run_cli(capsys, '--input', root, '--output', tmp_path / 'a.lmdb', '--crop-size', CROP, '--step',
                           STEP, '--workers', 0, '--with-gt')
    assert code == 2
    assert re.search(r'error: .*0001_GT_SRGB_010\.PNG: not a decodable image', err)
    assert not (tmp_path / 'a.lmdb').exists() and not (tmp_path / 'a_gt.lmdb').exists()
    missing = root / 'Data' / '0002_001_S6_00100_00020_3200_N' / '0002_GT_SRGB_011.PNG'
    missing.unlink()
    with pytest.raises(LayoutError, match=re.escape(str(missing))):
        prepare_sidd(str(root), str(tmp_path / 'b.lmdb'), CROP, STEP, workers=0, with_gt=True, progress=False)


def test_wrong_layout_errors_name_what_is_missing(tmp_path, capsys):
    code, _, err = run_cli(capsys, '--input', tmp_path / 'nowhere', '--output', tmp_path / 'x.lmdb')
    assert code == 2 and f'error: input folder {tmp_path / "nowhere"} does not exist' in err

    (tmp_path / 'empty' / 'Data').mkdir(parents=True)
    with pytest.raises(LayoutError, match='no scene folders in .*Data'):
        prepare_sidd(str(tmp_path / 'empty'), str(tmp_path / 'x.lmdb'), progress=False)

    scene = tmp_path / 'gt_only' / 'Data' / '0003_002_IP_00100_00100_3200_N'
    scene.mkdir(parents=True)
    cv2.imwrite(str(scene / '0003_GT_SRGB_010.PNG'), np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(LayoutError, match=re.escape(str(scene)) + '.*NOISY_SRGB'):
        prepare_sidd(str(tmp_path / 'gt_only'), str(tmp_path / 'x.lmdb'), progress=False)

    small, _ = make_sidd_tree(tmp_path / 'small')
    with pytest.raises(LayoutError, match='0001_NOISY_SRGB_010.PNG: image side 70 is smaller than crop size 512'):
        prepare_sidd(str(small), str(tmp_path / 'x.lmdb'), progress=False)
    assert not (tmp_path / 'x.lmdb').exists()


def test_existing_output_is_kept_unless_forced(tmp_path, capsys):
    root, images = make_sidd_tree(tmp_path)
    out = tmp_path / 'n.lmdb'
    prepare_sidd(str(root), str(out), CROP, STEP, workers=0, progress=False)
    before = (out / 'meta_info.txt').read_text()
    code, _, err = run_cli(capsys, '--input', root, '--output', out, '--crop-size', CROP, '--step', CROP)
    assert code == 2 and f'{out} already exists; pass --force' in err
    assert (out / 'meta_info.txt').read_text() == before
    code, _, err = run_cli(capsys, '--input', root, '--output', out, '--crop-size', CROP, '--step', CROP, '--force',
                           '--workers', 0)
    assert code == 0, err
    counts = sum(len(crop_boxes(*pair[0].shape[:2], CROP, CROP)) for pair in images.values())
    keys, entries, _ = read_lmdb(out)
    assert len(keys) == entries == counts < len(before.splitlines())


def test_interrupted_build_leaves_nothing_that_trains_and_a_rerun_recovers(tmp_path, monkeypatch):
    root, images = make_sidd_tree(tmp_path)
    out = tmp_path / 'n.lmdb'
    real = sidd_prepare.process_item
    calls = []

    def crash_on_third(args):
        calls.append(1)
        if len(calls) == 3:
            raise SimulatedKill('killed while packing the third image')
        return real(args)

    monkeypatch.setattr(sidd_prepare, 'process_item', crash_on_third)
    with pytest.raises(SimulatedKill):
        prepare_sidd(str(root), str(out), CROP, STEP, workers=0, progress=False)
    partial = tmp_path / 'n.lmdb.partial' / 'n.lmdb'
    assert not out.exists() and (partial / 'data.mdb').is_file()
    with pytest.raises(FileNotFoundError):  # BasicSR cannot list it: no meta_info.txt
        paths_from_lmdb(str(partial))

    monkeypatch.setattr(sidd_prepare, 'process_item', real)
    prepare_sidd(str(root), str(out), CROP, STEP, workers=0, progress=False)
    keys, entries, _ = read_lmdb(out)
    assert keys == list(expected_crops(images)) and entries == len(keys)
    assert not (tmp_path / 'n.lmdb.partial').exists()
