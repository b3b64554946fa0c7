"""The inference benchmark (benchmarks/inference_speed.py) on a tiny DnCNN:
it runs the inference function every entry point runs, counts the denoiser passes right, and its tiling check
finds the tiled output equal to the untiled one away from tile borders."""
import json

import pytest

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)

import inference_speed


def test_blocks_and_tiling_sections(tmp_path):
    report_path = tmp_path / 'report.json'
    inference_speed.main(['--arch', 'DnCNN', '--size', 'tiny', '--sections', 'blocks,tiling', '--repeats', '1',
                          '--precisions', 'fp32', '--chunk-sizes', 'all', '--r3-times', '1', '--fit-size', '96x80',
                          '--tile', '48', '--overlap', '16', '--clock', 'cpu', '--json', str(report_path)])
    report = json.loads(report_path.read_text())
    passes = {row['pipeline']: row['passes'] for row in report['blocks']}
    assert passes['MMDB (tiling)'] == 2 and passes['MMDB+R3 (tiling)'] == 4  # k (1 + T) full-image equivalents
    assert all(row['seconds'] > 0 and row['plain_forward'] > 0 for row in report['blocks'])
    tiling = report['tiling']
    assert tiling['computed_area'] >= 1.0
    assert tiling['max_diff_elsewhere'] < 1e-5 <= tiling['max_diff_borders'] + 1e-5


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
