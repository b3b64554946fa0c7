"""amsnet-export (ONNX + sidecar, checked with onnxruntime) and amsnet-denoise running the exported file."""
import json

import cv2
import numpy as np
import pytest
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import denoise, export
from amsnet_basicsr.inference import AMSNetDenoiser

from basicsr.archs import build_network

ANCHOR_BIAS = [[0.2, -0.02, -0.01, -0.03], [0.8, -0.005, -0.002, -0.004]]
STUDENT = {'type': 'NAFNet', 'img_channel': 3, 'width': 8, 'middle_blk_num': 1, 'enc_blk_nums': [1, 1],
           'dec_blk_nums': [1, 1]}


@pytest.fixture
def student(tmp_path, write_options):
    """(options file, checkpoint) of a small single-pass NAFNet with random weights, keeping the input's block means
    less a noise mean by level (as amsnet-train-folder's students do)."""
    torch.manual_seed(0)
    net = build_network(dict(STUDENT))
    checkpoint = tmp_path / 'student.pth'
    torch.save({'params': net.state_dict()}, checkpoint)
    options = write_options(tmp_path / 'student.yml', {
        'name': 'student', 'model_type': 'AMSNetModel', 'network_g': dict(STUDENT),
        'amsnet': {'single_pass': True, 'tile': {'size': 64, 'overlap': 16}, 'low_frequency_anchor': 16,
                   'anchor_bias': ANCHOR_BIAS},
        'path': {'pretrain_network_g': str(checkpoint)}})
    return options, checkpoint


@pytest.mark.slow
def test_export_round_trip_and_denoise_with_onnxruntime(tmp_path, student, image_folders, capsys):
    """The graph agrees with torch to 1e-4 on 256x256 and odd sizes (checked on export and here on another size);
    amsnet-denoise with the .onnx writes the image the torch model writes (same tiles, same blending, the same
    anchored means: the sidecar keeps ``low_frequency_anchor`` and ``anchor_bias``)."""
    options, checkpoint = student
    onnx_path = tmp_path / 'out' / 'student.onnx'
    assert export.main(['-opt', str(options), '--output', str(onnx_path)]) == 0
    info = json.loads(export.sidecar_path(onnx_path).read_text())
    assert info['max_abs_difference'] <= 1e-4 and info['channels'] == 3 and info['input_range'] == [0.0, 1.0]
    assert info['architecture'] == STUDENT and info['size_multiple'] == 1 and info['scale'] == 1
    assert info['low_frequency_anchor'] == 16 and info['anchor_bias'] == ANCHOR_BIAS
    assert AMSNetDenoiser.from_onnx(onnx_path).scheme.anchor_bias == tuple(map(tuple, ANCHOR_BIAS))
    runner = export.OnnxDenoiser(onnx_path)
    net = build_network(dict(STUDENT))
    net.load_state_dict(torch.load(checkpoint)['params'])
    image = torch.rand(1, 3, 45, 71, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert (runner(image) - net.eval()(image)).abs().max() <= 1e-4

    assert denoise.main([str(image_folders['val_noisy']), str(tmp_path / 'onnx'), '-c', str(onnx_path),
                         '-opt', str(options), '--quiet']) == 0
    assert denoise.main([str(image_folders['val_noisy']), str(tmp_path / 'torch'), '-opt', str(options),
                         '--quiet']) == 0
    for name in ('val_0.png', 'val_1.png'):
        from_onnx = cv2.imread(str(tmp_path / 'onnx' / name)).astype(int)
        from_torch = cv2.imread(str(tmp_path / 'torch' / name)).astype(int)
        assert np.abs(from_onnx - from_torch).max() <= 1  # float rounding may flip a quantisation step
    assert export.main(['-opt', str(options), '--output', str(onnx_path)]) == 2  # no overwrite without --force
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith('exists (use --force to overwrite)')


def test_a_corrupt_or_foreign_onnx_file_is_one_line_and_exit_2(tmp_path, image_folders, capsys):
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(b'not a protobuf')
    export.sidecar_path(corrupt).write_text(json.dumps({'format': export.FORMAT, 'channels': 3, 'size_multiple': 1}))
    assert denoise.main([str(image_folders['val_noisy']), str(tmp_path / 'out'), '-c', str(corrupt)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f'amsnet-denoise: error: {corrupt}: not a loadable ONNX model')
    foreign = tmp_path / 'foreign.onnx'
    foreign.write_bytes(b'')
    assert denoise.main([str(image_folders['val_noisy']), str(tmp_path / 'out'), '-c', str(foreign)]) == 2
    assert 'cannot read its sidecar foreign.onnx.json (written by amsnet-export)' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_only_a_single_pass_network_is_exported(tmp_path, student, capsys):
    options, _ = student
    text = options.read_text().replace('single_pass: true', 'single_pass: false')
    scheme = tmp_path / 'scheme.yml'
    scheme.write_text(text)
    assert export.main(['-opt', str(scheme), '--output', str(tmp_path / 'x.onnx')]) == 2
    assert 'only a single-pass network (a distilled student' in capsys.readouterr().err
    assert not (tmp_path / 'x.onnx').exists()
