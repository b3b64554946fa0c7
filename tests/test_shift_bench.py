"""The data-shift bench: one demo run's settings, evaluated on every camera-pipeline variant, nothing re-tuned."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from amsnet_basicsr import shift_bench

from conftest import REPO


def test_variants_change_the_camera_pipeline_not_the_scene():
    """Each variant's clean and noisy blocks differ from the tuning variant's in the way its name says."""
    base = shift_bench.variant_blocks(list(shift_bench.VARIANTS)[0], seed=0, block=64, limit=1)
    jpeg = shift_bench.variant_blocks('soft, JPEG quality 90', seed=0, block=64, limit=1)
    sharp = shift_bench.variant_blocks('soft, ISP sharpening', seed=0, block=64, limit=1)
    assert [key for key, _, _ in base] == [key for key, _, _ in jpeg]
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(base, jpeg))  # JPEG touches the noisy image only
    assert all(not np.array_equal(a[1], b[1]) for a, b in zip(base, jpeg))
    # sharpening raises the high frequencies of both: the clean block's Laplacian energy grows
    laplacian = [np.abs(np.diff(block[2], 2, axis=0)).mean() for block in (base[0], sharp[0])]
    assert laplacian[1] > 1.2 * laplacian[0]
    cast, low = shift_bench.errors(np.full((8, 8, 3), 12, np.uint8), np.full((8, 8, 3), 10, np.uint8))
    assert cast == 2 and low == pytest.approx(2)


@pytest.mark.slow
def test_bench_evaluates_a_demo_runs_settings_on_the_variants(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    demo = tmp_path / 'demo'
    result = subprocess.run([sys.executable, '-m', 'amsnet_basicsr.demo', '--quick', '--out', str(demo)], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    bench = subprocess.run([sys.executable, '-m', 'amsnet_basicsr.shift_bench', '--demo', str(demo), '--out',
                            str(tmp_path / 'bench'), '--block', '48', '--limit', '1', '--adapt-steps', '2',
                            '--variants', '0', '3'], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
    assert bench.returncode == 0, bench.stderr[-2000:]
    report = json.loads((tmp_path / 'bench' / 'shift_bench.json').read_text())
    chosen = json.loads((demo / 'results.json').read_text())['baseline_parameters']
    assert list(report['variants']) == [list(shift_bench.VARIANTS)[0], 'soft, JPEG quality 90']
    for rows in report['variants'].values():
        methods = [row['method'] for row in rows]
        assert methods[0] == 'noisy input' and methods[-1] == 'AMSNet-B-E + --adapt 2 (per block)'
        assert f'OpenCV NLM ({chosen["OpenCV NLM"]:g}, tuned on the demo\'s validation block)' in methods
        assert all(0 < row['psnr'] < 100 and row['cast'] >= 0 and row['low_frequency'] > 0 for row in rows)
    missing = subprocess.run([sys.executable, '-m', 'amsnet_basicsr.shift_bench', '--demo', str(tmp_path), '--out',
                              str(tmp_path / 'x')], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and 'no teacher options' in missing.stderr
