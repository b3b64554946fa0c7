"""The amsnet-denoise command (amsnet_basicsr/denoise.py): formats, bit depths, safety rules."""
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import denoise, tiling
from amsnet_basicsr.masks import PositionalMasks

from basicsr.archs import build_network

TILE = dict(tile_size=32, overlap=8)
SCHEME = dict(stride=2, num_branches=2, masks_per_pixel=1, multiple=1, chunk_size=8, refine_times=2, refine_prob=0.16)


def make_model(folder, channels=3):
    """A tiny random DnCNN saved as a BasicSR checkpoint, and an options file naming it."""
    network = {'type': 'DnCNN', 'in_nc': channels, 'out_nc': channels, 'nc': 8, 'nb': 3}
    torch.manual_seed(channels)
    net = build_network(dict(network)).eval()
    checkpoint = folder / f'net_g_{channels}.pth'
    torch.save({'params': net.state_dict()}, checkpoint)
    options = {'network_g': network, 'path': {'pretrain_network_g': str(checkpoint), 'param_key_g': 'params'},
               'amsnet': {'test_stride': 2, 'num_branches': 2, 'size_multiple': 1, 'chunk_size': 8, 'seed': 3,
                          'r3': {'enabled': True, 'times': 2, 'prob': 0.16}}}
    option_file = folder / f'denoise_{channels}.yml'
    option_file.write_text(yaml.safe_dump(options))
    return net, option_file


def expected_output(net, stored):
    """What the command must write for ``stored`` (as cv2 reads it), computed here with tiling directly."""
    scale = 65535.0 if stored.dtype == np.uint16 else 255.0
    alpha = stored[..., 3:] if stored.ndim == 3 and stored.shape[2] == 4 else None
    if stored.ndim == 2:
        rgb = np.repeat(stored[..., None], 3, axis=2)
    else:
        rgb = stored[..., :3][..., ::-1]
    tensor = torch.from_numpy(np.ascontiguousarray(rgb).astype(np.float32) / scale).permute(2, 0, 1)[None]
    out = tiling.denoise_image(net, tensor, masks=PositionalMasks(3), **SCHEME, **TILE)
    if stored.ndim == 2:
        out = out.mean(1, keepdim=True)
    out = np.rint(out[0].permute(1, 2, 0).clamp(0, 1).numpy() * scale).astype(stored.dtype)
    if stored.ndim == 2:
        return out[..., 0]
    out = out[..., ::-1]
    return np.concatenate([out, alpha], axis=2) if alpha is not None else out


def run_cli(*args):
    return denoise.main([str(arg) for arg in args] + ['--quiet', '--tile', '32', '--tile-overlap', '8'])


@pytest.fixture
def model(tmp_path):
    return make_model(tmp_path)


@pytest.mark.parametrize('name,make', [
    ('rgb8.png', lambda rng: rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)),
    ('rgb16.png', lambda rng: rng.integers(0, 65536, (40, 45, 3), dtype=np.uint16)),
    ('rgb16.tif', lambda rng: rng.integers(0, 65536, (33, 40, 3), dtype=np.uint16)),
    ('gray8.png', lambda rng: rng.integers(0, 256, (35, 41), dtype=np.uint8)),
    ('gray16.tiff', lambda rng: rng.integers(0, 65536, (35, 41), dtype=np.uint16)),
    ('rgba8.png', lambda rng: rng.integers(0, 256, (36, 39, 4), dtype=np.uint8)),
    ('rgba16.png', lambda rng: rng.integers(0, 65536, (36, 39, 4), dtype=np.uint16)),
])
def test_round_trip_keeps_format_and_matches_tiled_denoise(tmp_path, model, name, make):
    """Same shape, channels and bit depth out as in; alpha untouched; RGB order right (the random net is
    not channel-symmetric, so a BGR/RGB mix-up changes the values)."""
    net, option_file = model
    stored = make(np.random.default_rng(0))
    (tmp_path / 'in').mkdir()
    assert cv2.imwrite(str(tmp_path / 'in' / name), stored)
    assert run_cli(tmp_path / 'in' / name, tmp_path / 'out', '-opt', option_file) == 0
    written = cv2.imread(str(tmp_path / 'out' / name), cv2.IMREAD_UNCHANGED)
    assert written.dtype == stored.dtype and written.shape == stored.shape
    if stored.ndim == 3 and stored.shape[2] == 4:
        assert np.array_equal(written[..., 3], stored[..., 3])
    np.testing.assert_array_equal(written, expected_output(net, stored))
    assert not np.array_equal(written, stored)


def test_jpeg_and_one_channel_model(tmp_path):
    _, option_file = make_model(tmp_path, channels=1)
    rng = np.random.default_rng(1)
    folder = tmp_path / 'in' / 'nested'
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / 'gray.png'), rng.integers(0, 256, (34, 40), dtype=np.uint8))
    cv2.imwrite(str(folder / 'colour.JPG'), rng.integers(0, 256, (34, 40, 3), dtype=np.uint8))
    assert run_cli(tmp_path / 'in', tmp_path / 'out', '-opt', option_file, '--side-by-side') == 0
    gray = cv2.imread(str(tmp_path / 'out' / 'nested' / 'gray.png'), cv2.IMREAD_UNCHANGED)
    colour = cv2.imread(str(tmp_path / 'out' / 'nested' / 'colour.JPG'), cv2.IMREAD_UNCHANGED)
    panel = cv2.imread(str(tmp_path / 'out' / 'nested' / 'gray_side_by_side.png'), cv2.IMREAD_UNCHANGED)
    assert gray.shape == (34, 40) and colour.shape == (34, 40, 3) and colour.dtype == np.uint8
    assert panel.shape == (34, 80) and np.array_equal(panel[:, 40:], gray)


def test_never_overwrites_without_force(tmp_path, model):
    _, option_file = model
    (tmp_path / 'in').mkdir()
    (tmp_path / 'out').mkdir()
    cv2.imwrite(str(tmp_path / 'in' / 'a.png'), np.random.default_rng(2).integers(0, 256, (32, 32, 3), np.uint8))
    existing = tmp_path / 'out' / 'a.png'
    existing.write_bytes(b'precious')
    assert run_cli(tmp_path / 'in', tmp_path / 'out', '-opt', option_file) == 0
    assert existing.read_bytes() == b'precious'
    assert run_cli(tmp_path / 'in', tmp_path / 'out', '-opt', option_file, '--force') == 0
    assert cv2.imread(str(existing)).shape == (32, 32, 3)
    assert not [path.name for path in (tmp_path / 'out').iterdir() if path.name.startswith('.')]  # no temp left


def test_corrupt_file_reported_others_processed(tmp_path, model, capsys):
    _, option_file = model
    folder = tmp_path / 'in'
    folder.mkdir()
    rng = np.random.default_rng(3)
    cv2.imwrite(str(folder / 'first.png'), rng.integers(0, 256, (32, 36, 3), np.uint8))
    (folder / 'middle.png').write_bytes(b'\x89PNG\r\n\x1a\n this is not an image')
    (folder / 'empty.tif').write_bytes(b'')
    cv2.imwrite(str(folder / 'last.png'), rng.integers(0, 256, (30, 30, 3), np.uint8))
    assert run_cli(folder, tmp_path / 'out', '-opt', option_file) == 1
    assert (tmp_path / 'out' / 'first.png').exists() and (tmp_path / 'out' / 'last.png').exists()
    assert not (tmp_path / 'out' / 'middle.png').exists()
    errors = capsys.readouterr().err
    assert 'middle.png: not a decodable image' in errors and 'empty.tif: empty file' in errors
    assert '2 denoised' in errors and '2 failed' in errors


def test_setup_errors_exit_2(tmp_path, model):
    _, option_file = model
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.zeros((16, 16, 3), np.uint8))
    assert run_cli(image, tmp_path / 'out', '-opt', option_file, '-c', tmp_path / 'missing.pth') == 2
    assert run_cli(image, tmp_path / 'out', '-opt', option_file, '--num-branches', '1') == 2
    wrong = make_model(tmp_path, channels=1)[1]
    other = yaml.safe_load(option_file.read_text())
    other['path']['pretrain_network_g'] = yaml.safe_load(wrong.read_text())['path']['pretrain_network_g']
    option_file.write_text(yaml.safe_dump(other))
    assert run_cli(image, tmp_path / 'out', '-opt', option_file) == 2  # 1-channel weights, 3-channel net
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert run_cli(empty, tmp_path / 'out', '-opt', option_file) == 2  # nothing to denoise: bad input, not partial
    assert not (tmp_path / 'out').exists()


@pytest.mark.slow
def test_python_dash_m_entry_point(tmp_path, model):
    _, option_file = model
    image = tmp_path / 'photo.png'
    cv2.imwrite(str(image), np.random.default_rng(4).integers(0, 256, (40, 40, 3), np.uint8))
    result = subprocess.run([sys.executable, '-m', 'amsnet_basicsr.denoise', str(image), str(tmp_path / 'out'),
                             '-opt', str(option_file), '--no-r3', '--precision', 'bf16', '--tile', '0'],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert cv2.imread(str(tmp_path / 'out' / 'photo.png')).shape == (40, 40, 3)


def test_model_channels_from_options_before_first_conv():
    """A denoiser that widens its input internally (e.g. image + mask planes) still takes 3-channel images."""
    widening = torch.nn.Sequential(torch.nn.Conv2d(7, 3, 3))
    assert denoise.model_channels(widening, {'type': 'MaskAware', 'in_nc': 3}) == 3
    assert denoise.model_channels(widening, {'type': 'Restormer', 'inp_channels': 1}) == 1
    assert denoise.model_channels(widening, {'type': 'Unknown'}) == 7


def test_adapt_fine_tunes_on_each_photo_deterministically(tmp_path, image_folders):
    """``--adapt N``: N self-supervised steps (stage mask, L_m) on crops of the photo change the output; the same
    seed gives the same image twice; a single-pass model is refused with one line."""
    import torch
    import yaml

    from amsnet_basicsr import denoise

    from basicsr.archs import build_network
    network = {'type': 'MaskAwareDnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': 3}
    torch.manual_seed(0)
    checkpoint = tmp_path / 'net.pth'
    torch.save({'params': build_network(dict(network)).state_dict()}, checkpoint)
    options = tmp_path / 'model.yml'
    options.write_text(yaml.safe_dump({'model_type': 'AMSNetModel', 'network_g': network,
                                       'amsnet': {'train_stride': 2, 'test_stride': 2},
                                       'path': {'pretrain_network_g': str(checkpoint)}}))
    photo = image_folders['val_noisy']
    for name, extra in (('plain', []), ('adapted', ['--adapt', '3']), ('again', ['--adapt', '3'])):
        assert denoise.main([str(photo), str(tmp_path / name), '-opt', str(options), '--quiet', *extra]) == 0
    read = [cv2.imread(str(tmp_path / name / 'val_0.png')) for name in ('plain', 'adapted', 'again')]
    assert not np.array_equal(read[0], read[1]) and np.array_equal(read[1], read[2])
    student = tmp_path / 'student.yml'
    student.write_text(options.read_text().replace('train_stride: 2', 'single_pass: true'))
    assert denoise.main([str(photo), str(tmp_path / 'x'), '-opt', str(student), '--adapt', '3']) == 2
