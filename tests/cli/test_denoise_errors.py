"""amsnet-denoise never exits 0 with a wrong image and reports every problem once (amsnet_basicsr/denoise.py).

Format conversion for ``--ext`` (:func:`amsnet_basicsr.image_io.convert_for`), unusable output folders and failed
writes, photos too small for the mask scheme, the tile-size message, OpenCV's own log lines and Ctrl-C. All
in-process (``denoise.main``) with tiny untrained MaskAwareDnCNNs.
"""
import os

import cv2
import numpy as np
import pytest
import torch
import yaml

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import denoise, image_io, tiling
from amsnet_basicsr.errors import ImageError

from basicsr.archs import build_network

NETWORK = {'type': 'MaskAwareDnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': 3}


def make_model(folder, **amsnet):
    """An untrained MaskAwareDnCNN (its last layer starts at zero: it outputs the mean of each zeroed pixel's
    non-zero neighbours and leaves every other pixel as it is) and an options file with ``amsnet``."""
    torch.manual_seed(0)
    checkpoint = folder / 'net.pth'
    torch.save({'params': build_network(dict(NETWORK)).state_dict()}, checkpoint)
    option_file = folder / 'model.yml'
    option_file.write_text(yaml.safe_dump({'network_g': NETWORK, 'path': {'pretrain_network_g': str(checkpoint)},
                                           'amsnet': {'test_stride': 2, 'chunk_size': 8, **amsnet}}))
    return option_file


@pytest.fixture
def identity_model(tmp_path):
    """Single pass (no mask): the untrained network returns any image without a zero pixel exactly."""
    return make_model(tmp_path, single_pass=True)


@pytest.fixture
def mask_model(tmp_path):
    """The mask scheme (MMDB at PD stride 2, then R^3: variant B-E)."""
    return make_model(tmp_path, r3={'enabled': True, 'times': 2})


def run(*args):
    return denoise.main([str(arg) for arg in args] + ['--quiet'])


def error_lines(text):
    return [line for line in text.splitlines() if 'error' in line]


# ------------------------------------------------------------------------------------------------ --ext
def test_convert_for_keeps_or_converts_explicitly():
    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    floats = np.array([[[-0.5, 0.0, 0.25], [0.5, 1.0, 7.0], [np.nan, 1e-6, 0.999]]], np.float32)
    for path in ('a.png', 'a.tif', 'a.TIFF'):
        assert image_io.convert_for(path, deep) is deep
    assert image_io.convert_for('a.tif', floats) is floats
    to_jpeg = image_io.convert_for('a.jpg', deep)
    assert to_jpeg.dtype == np.uint8 and np.array_equal(to_jpeg, np.rint(deep / 257).astype(np.uint8))
    clipped = np.clip(np.nan_to_num(floats.astype(np.float64)), 0, 1)
    to_png = image_io.convert_for('a.png', floats)
    assert to_png.dtype == np.uint16 and np.array_equal(to_png, np.rint(clipped * 65535))
    assert np.array_equal(image_io.convert_for('a.JPEG', floats), np.rint(clipped * 255).astype(np.uint8))
    with pytest.raises(ImageError, match=r'a\.bmp: cannot write \.bmp'):
        image_io.convert_for('a.bmp', deep)
    with pytest.raises(ImageError, match=r'a\.jpg: \.jpg cannot store the alpha channel'):
        image_io.convert_for('a.jpg', np.zeros((2, 2, 4), np.uint8))
    assert denoise.IMAGE_EXTENSIONS is image_io.IMAGE_EXTENSIONS


def test_ext_converts_the_bit_depth_instead_of_saturating(tmp_path, identity_model):
    """16-bit -> --ext jpg used to come out all 255 and float32 -> --ext png as 0/1."""
    rng = np.random.default_rng(1)
    rows, cols = np.mgrid[0:40, 0:48] / 48
    deep = np.rint(np.stack([0.2 + 0.6 * cols, 0.8 - 0.5 * rows, 0.3 + 0.3 * rows + 0.3 * cols], 2) * 65535)
    deep = deep.astype(np.uint16)  # smooth: JPEG keeps it within a few levels
    floats = (deep[::-1, ::-1] / 65535.0 + rng.uniform(0, 1e-3, deep.shape)).astype(np.float32)
    folder = tmp_path / 'in'
    folder.mkdir()
    assert cv2.imwrite(str(folder / 'deep.png'), deep) and cv2.imwrite(str(folder / 'float.tif'), floats)
    for ext in ('jpg', 'png', 'tif'):
        assert run(folder, tmp_path / ext, '-opt', identity_model, '--ext', ext) == 0
    read = {path.relative_to(tmp_path).as_posix(): cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            for path in tmp_path.glob('*/*.*') if path.parent.name != 'in'}
    assert {name: image.dtype for name, image in read.items()} == {
        'jpg/deep.jpg': np.uint8, 'jpg/float.jpg': np.uint8, 'png/deep.png': np.uint16, 'png/float.png': np.uint16,
        'tif/deep.tif': np.uint16, 'tif/float.tif': np.float32}
    assert np.array_equal(read['png/deep.png'], deep) and np.array_equal(read['tif/deep.tif'], deep)
    assert np.array_equal(read['tif/float.tif'], floats)
    assert np.abs(read['png/float.png'].astype(np.int64) - np.rint(floats * 65535.0)).max() <= 1
    for name, expected in (('jpg/deep.jpg', np.rint(deep / 257)), ('jpg/float.jpg', np.rint(floats * 255.0))):
        jpeg_error = np.abs(read[name].astype(np.int64) - expected)
        assert jpeg_error.mean() < 1 and jpeg_error.max() <= 8, name


@pytest.mark.parametrize('ext', ['bmp', 'xyz', '.webp'])
def test_unsupported_ext_is_one_line_before_any_work(tmp_path, identity_model, capsys, ext):
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.full((8, 8, 3), 9, np.uint8))
    assert run(image, tmp_path / 'out', '-opt', identity_model, '--ext', ext) == 2
    assert capsys.readouterr().err == (f'amsnet-denoise: error: --ext {ext}: cannot write this format; supported: '
                                       'png, tif, tiff, jpg, jpeg\n')
    assert not (tmp_path / 'out').exists()


# ------------------------------------------------------------------------------------------------ output
@pytest.mark.parametrize('output,reason', [('blocker', 'File exists'), ('blocker/out', 'Not a directory')])
def test_unusable_output_folder_is_one_line_exit_2(tmp_path, identity_model, capsys, output, reason):
    (tmp_path / 'blocker').write_text('a file, not a folder')
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.full((8, 8, 3), 9, np.uint8))
    assert run(image, tmp_path / output, '-opt', identity_model) == 2
    assert capsys.readouterr().err == (f'amsnet-denoise: error: output folder {tmp_path / output} cannot be created '
                                       f'({reason})\n')


def test_read_only_output_folder_is_one_line_exit_2(tmp_path, identity_model, capsys, monkeypatch):
    """(The tests run as root, whom chmod does not stop: the permission check is simulated.)"""
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.full((8, 8, 3), 9, np.uint8))
    out = tmp_path / 'out'
    real_access = os.access
    monkeypatch.setattr(os, 'access', lambda path, mode: False if path == out else real_access(path, mode))
    assert run(image, out, '-opt', identity_model) == 2
    assert capsys.readouterr().err == f'amsnet-denoise: error: output folder {out} is not writable\n'


def test_failed_write_is_one_failed_file_and_the_batch_goes_on(tmp_path, identity_model, capsys, monkeypatch):
    folder = tmp_path / 'in'
    folder.mkdir()
    for name in ('a.png', 'b.png', 'c.png'):
        cv2.imwrite(str(folder / name), np.full((8, 8, 3), 9, np.uint8))
    real_replace = os.replace

    def replace(source, target):
        if os.path.basename(target) == 'b.png':
            raise PermissionError(13, 'Permission denied', source)
        return real_replace(source, target)

    monkeypatch.setattr(os, 'replace', replace)
    assert run(folder, tmp_path / 'out', '-opt', identity_model) == 1
    assert sorted(path.name for path in (tmp_path / 'out').iterdir()) == ['a.png', 'c.png']  # no temporary file
    err = capsys.readouterr().err
    assert error_lines(err) == [f'error: {tmp_path / "out" / "b.png"}: cannot be written (Permission denied)']
    assert '2 denoised, 0 skipped (existing), 1 failed' in err and err.count('b.png') == 2  # error + failed list


# ------------------------------------------------------------------------------------------- tiny photos
def test_photos_too_small_for_the_pd_stride_are_refused(tmp_path, mask_model, capsys):
    """At PD stride 2 a 1x1 or 2x2 photo's PD sub-images, and the centre of a 3x3, are mirror copies of one pixel
    sharing its mask: masked, nothing is left to predict it from (a grey 1x1 photo came out black, exit 0)."""
    folder = tmp_path / 'in'
    folder.mkdir()
    sizes = [(1, 1), (2, 2), (3, 3), (3, 2), (1, 4), (4, 4), (8, 8)]
    for height, width in sizes:
        cv2.imwrite(str(folder / f'{height}x{width}.png'), np.full((height, width, 3), 100, np.uint8))
    assert run(folder, tmp_path / 'out', '-opt', mask_model) == 1
    assert sorted(path.name for path in (tmp_path / 'out').iterdir()) == ['1x4.png', '4x4.png', '8x8.png']
    refused = error_lines(capsys.readouterr().err)
    assert refused == [f'error: {folder / f"{h}x{w}.png"}: a {h}x{w} photo is too small for the mask scheme at PD '
                       'stride 2 (it needs at least 4 pixels on one side)' for h, w in sorted(sizes[:4])]


def test_single_pass_takes_a_one_pixel_photo(tmp_path, identity_model):
    image = tmp_path / 'dot.png'
    cv2.imwrite(str(image), np.array([[[100, 90, 80]]], np.uint8))
    assert run(image, tmp_path / 'out', '-opt', identity_model) == 0
    assert cv2.imread(str(tmp_path / 'out' / 'dot.png')).tolist() == [[[100, 90, 80]]]


# ------------------------------------------------------------------------------------------------- tiles
def test_tile_too_small_is_one_clear_line_naming_the_flag(tmp_path, mask_model, capsys):
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.full((8, 8, 3), 9, np.uint8))
    assert run(image, tmp_path / 'out', '-opt', mask_model, '--tile', '64') == 2
    assert capsys.readouterr().err == ('amsnet-denoise: error: --tile 64: amsnet.tile: tile size 64 must be larger '
                                       'than twice the overlap (2 x 32 = 64 pixels)\n')
    assert not (tmp_path / 'out').exists()
    with pytest.raises(ValueError, match=r'^tile size 65 \(64 after rounding down to a multiple of 4\) must be larger '
                                         r'than twice the overlap \(2 x 32 = 64 pixels\)$'):
        tiling.plan_tiles(100, 100, 65, 31, stride=2, multiple=2)
    with pytest.raises(ValueError, match=r'^tile size 3 is smaller than stride x size multiple = 4 pixels$'):
        tiling.plan_tiles(100, 100, 3, 0, stride=2, multiple=2)


# ---------------------------------------------------------------------------------------- stderr, Ctrl-C
def test_a_clean_run_prints_only_its_summary(tmp_path, identity_model, capfd):
    """OpenCV's own ``[ WARN ...]`` lines (here libtiff's note on an RGBA float TIFF) do not reach stderr."""
    folder = tmp_path / 'in'
    folder.mkdir()
    cv2.imwrite(str(folder / 'rgba.tif'), np.full((8, 8, 4), 0.5, np.float32))
    cv2.imwrite(str(folder / 'deep.png'), np.full((8, 8, 3), 4000, np.uint16))
    capfd.readouterr()
    assert run(folder, tmp_path / 'out', '-opt', identity_model) == 0
    assert run(folder / 'deep.png', tmp_path / 'jpg', '-opt', identity_model, '--ext', 'jpg') == 0
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith('amsnet-denoise: ') for line in lines), lines


def test_ctrl_c_is_one_line_exit_130_and_nothing_half_written(tmp_path, identity_model, capsys, monkeypatch):
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.full((8, 8, 3), 9, np.uint8))

    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'fsync', interrupt)  # while the output is being written
    try:
        status = run(image, tmp_path / 'out', '-opt', identity_model)
    except KeyboardInterrupt:
        pytest.fail('KeyboardInterrupt escaped amsnet-denoise')
    assert status == 130
    assert capsys.readouterr().err == 'amsnet-denoise: interrupted\n'
    assert list((tmp_path / 'out').iterdir()) == []


def test_mask_scheme_tiles_narrower_than_two_pd_cells_are_refused():
    """A tile of fewer than 2 x stride pixels leaves one pixel per PD sub-image side: a masked pixel would keep no
    neighbour (a constant 8x8 photo came out 80 levels off at --tile 3 --tile-overlap 0)."""
    from amsnet_basicsr.config import SchemeConfig
    from amsnet_basicsr.errors import OptionError
    with pytest.raises(OptionError, match='at least 2 x test_stride = 4 pixels'):
        SchemeConfig.from_section({'tile': {'size': 3, 'overlap': 0}})
    assert SchemeConfig.from_section({'tile': {'size': 4, 'overlap': 0}}).tile.size == 4
    assert SchemeConfig.from_section({'single_pass': True, 'tile': {'size': 3, 'overlap': 0}}).tile.size == 3
