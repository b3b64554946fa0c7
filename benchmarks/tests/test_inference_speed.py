"""The inference benchmark (benchmarks/inference_speed.py) on a tiny DnCNN:
it runs the inference function every entry point runs, counts the denoiser passes right, and its tiling check
finds the tiled output equal to the untiled one away from tile borders; its large section runs the product's
AMSNetDenoiser, with the output of the tiling call it replaced; its chunk sizes are spelled as amsnet-denoise's
``--chunk-size`` (auto, all or a number); its photo section times a trained ``denoise.yml`` as the product runs it
and on NCHW tiles."""
import json
from types import SimpleNamespace

import inference_speed
import pytest
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.config import CHUNK_PIXELS


def test_blocks_and_tiling_sections(tmp_path):
    report_path = tmp_path / 'report.json'
    inference_speed.main(['--arch', 'DnCNN', '--size', 'tiny', '--sections', 'blocks,tiling', '--repeats', '1',
                          '--precisions', 'fp32', '--chunk-sizes', 'all', '--chunk-size', 'all', '--r3-times', '1',
                          '--fit-size', '96x80', '--tile', '48', '--overlap', '16', '--clock', 'cpu', '--json',
                          str(report_path)])
    report = json.loads(report_path.read_text())
    passes = {row['pipeline']: row['passes'] for row in report['blocks']}
    assert passes['MMDB (tiling)'] == 2 and passes['MMDB+R3 (tiling)'] == 4  # k (1 + T) full-image equivalents
    assert all(row['seconds'] > 0 and row['plain_forward'] > 0 for row in report['blocks'])
    tiling = report['tiling']
    assert tiling['computed_area'] >= 1.0
    assert tiling['max_diff_elsewhere'] < 1e-5 <= tiling['max_diff_borders'] + 1e-5


def test_chunk_sizes_are_spelled_as_in_amsnet_denoise(capsys):
    """``--chunk-size`` and ``--chunk-sizes`` take amsnet-denoise's spellings (``chunk_size_flag``): auto (the pixel
    budget of ``amsnet.chunk_size: auto``), all (``chunk_size: null``, every pass in one call) or a number >= 1; 0, the
    benchmark's old spelling of all, is refused."""
    cpu = torch.device('cpu')

    def settings(text):
        return inference_speed.chunk_settings(inference_speed.chunk_flag(text), cpu)

    assert settings('all') == ('all', dict(chunk_size=None, chunk_pixels=None))
    assert settings('8') == ('8', dict(chunk_size=8, chunk_pixels=None))
    assert settings('auto')[1] == dict(chunk_size=None, chunk_pixels=CHUNK_PIXELS['cpu'])
    for flag in ('--chunk-size', '--chunk-sizes'):
        for text in ('0', '-2', 'none'):
            with pytest.raises(SystemExit) as exit_info:
                inference_speed.main([flag, text, '--sections', 'none'])
            assert exit_info.value.code == 2
            assert f'argument {flag}: expected auto, all' in capsys.readouterr().err


def test_large_section_hands_its_chunk_size_to_the_child(tmp_path, monkeypatch, capsys):
    """The large section passes ``--chunk-size all`` on to its child process as ``all``, which the child accepts: the
    child runs here in this process, on the command line the section built."""
    def run_child_here(command, **kwargs):
        assert command[command.index('--chunk-size') + 1] == 'all'
        capsys.readouterr()
        inference_speed.main(command[2:])
        return SimpleNamespace(stdout=capsys.readouterr().out, stderr='')

    monkeypatch.setattr(inference_speed.subprocess, 'run', run_child_here)
    report_path = tmp_path / 'report.json'
    inference_speed.main(['--arch', 'DnCNN', '--size', 'tiny', '--sections', 'none', '--megapixels', '0.001',
                          '--compare-megapixels', '0', '--precisions', 'fp32', '--tile', '16', '--overlap', '4',
                          '--chunk-size', 'all', '--json', str(report_path)])
    [result] = json.loads(report_path.read_text())['large']
    assert 'error' not in result and result['finite'] and result['seconds'] > 0


@pytest.mark.parametrize('untiled,large_r3,chunk', [(False, False, 'all'), (False, True, 'auto'), (True, True, 3)])
def test_large_section_denoises_as_its_tiling_call_did(untiled, large_r3, chunk):
    """The large section's child runs the product's AMSNetDenoiser (:func:`large_denoiser`): the same output, bit for
    bit, as the ``tiling.denoise_image`` call it replaced (on channels-last inputs, as the product runs a network on the
    CPU), tiled or untiled, with R^3 or without, at any chunk size."""
    from amsnet_basicsr import tiling
    from amsnet_basicsr.inference import channels_last
    from amsnet_basicsr.masks import PositionalMasks
    device = torch.device('cpu')
    args = inference_speed.parse_args(['--arch', 'UNet', '--size', 'tiny', '--tile', '64', '--overlap', '8',
                                       '--r3-times', '2', '--num-branches', '3', '--chunk-size', str(chunk),
                                       '--precisions', 'fp32'])
    args.child_untiled, args.large_r3 = untiled, large_r3
    net, multiple, _ = inference_speed.build(args.arch, args.size, device)
    image = inference_speed.test_image(96, 80, device)
    _, chunking = inference_speed.chunk_settings(args.chunk_size, device)
    expected = tiling.denoise_image(channels_last(net), image, masks=PositionalMasks(0), stride=2,
                                    num_branches=args.num_branches, multiple=multiple,
                                    refine_times=args.r3_times if large_r3 else 0,
                                    tile_size=None if untiled else args.tile, overlap=args.overlap, device=device,
                                    **chunking)
    denoiser = inference_speed.large_denoiser(args, net, multiple, device)
    assert torch.equal(denoiser(image), expected)
    assert (denoiser.tile_count(96, 80) == 1) is untiled  # the tiled child does tile


@pytest.mark.slow
def test_student_section_times_teacher_student_and_onnx(tmp_path):
    """The student section times the teacher's P-E, the student's single pass and its onnxruntime run, and prints
    each one's speed-up over the teacher."""
    report_path = tmp_path / 'report.json'
    inference_speed.main(['--arch', 'DnCNN', '--size', 'tiny', '--sections', 'student', '--repeats', '1',
                          '--r3-times', '1', '--clock', 'cpu', '--json', str(report_path)])
    rows = json.loads(report_path.read_text())['student']
    assert [row['model'].split(' ')[0] for row in rows] == ['teacher', 'student', 'student']
    assert 'onnxruntime' in rows[2]['model'] and rows[0]['speed_up'] == 1.0
    assert all(row['seconds'] > 0 for row in rows) and rows[1]['parameters'] > 1_000_000


def test_photo_section_times_a_denoise_yml_and_its_nchw_tiles(tmp_path, write_options):
    """The photo section runs a ``denoise.yml`` through AMSNetDenoiser on photos of the given sizes, at its own tile
    size and another, and its own tiles in NCHW (glibc's malloc left as it is in this test process)."""
    from helpers import GOLDEN, GOLDEN_NETWORKS, GOLDEN_SCHEMES
    options = write_options(tmp_path / 'denoise.yml', {
        'network_g': GOLDEN_NETWORKS['student'], 'amsnet': GOLDEN_SCHEMES['student'],
        'path': {'pretrain_network_g': str(GOLDEN / 'student.pth'), 'param_key_g': 'params'}})
    report_path = tmp_path / 'report.json'
    inference_speed.main(['--sections', 'photo', '--photo-options', str(options), '--photo-megapixels', '0.01',
                          '0.02', '--photo-tiles', '64', '--default-malloc', '--repeats', '1', '--clock', 'cpu',
                          '--json', str(report_path)])
    rows = json.loads(report_path.read_text())['photo']
    own = f'tile {GOLDEN_SCHEMES["student"]["tile"]["size"]}'
    assert [(row['megapixels'], row['path']) for row in rows] == [
        (megapixels, path) for megapixels in (0.01, 0.02)
        for path in (f'amsnet-denoise, {own}', f'NCHW tiles, {own}', 'amsnet-denoise, tile 64')]
    assert all(row['malloc'].startswith("glibc's default") for row in rows)
    assert all(row['seconds'] > 0 for row in rows)
