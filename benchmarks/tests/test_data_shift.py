"""The data-shift bench: one demo run's settings, evaluated on every camera-pipeline variant, nothing re-tuned."""
import json
import os
import subprocess
import sys

import cv2
import data_shift
import numpy as np
import pytest

from amsnet_basicsr import demo_data
from amsnet_basicsr.recipes import RECIPES

from helpers import REPO

SCRIPT = REPO / 'benchmarks' / 'data_shift.py'


def test_variants_change_the_camera_pipeline_not_the_scene():
    """Each variant's clean and noisy blocks differ from the tuning variant's in the way its name says."""
    base = data_shift.variant_blocks(list(data_shift.VARIANTS)[0], seed=0, block=64, limit=1)
    jpeg = data_shift.variant_blocks('soft, JPEG quality 90', seed=0, block=64, limit=1)
    sharp = data_shift.variant_blocks('soft, ISP sharpening', seed=0, block=64, limit=1)
    assert [key for key, _, _ in base] == [key for key, _, _ in jpeg]
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(base, jpeg))  # JPEG touches the noisy image only
    assert all(not np.array_equal(a[1], b[1]) for a, b in zip(base, jpeg))
    # sharpening raises the high frequencies of both: the clean block's Laplacian energy grows
    laplacian = [np.abs(np.diff(block[2], 2, axis=0)).mean() for block in (base[0], sharp[0])]
    assert laplacian[1] > 1.2 * laplacian[0]
    # a random camera per photo: other noise and other clean colours; its colour correction mixes the channels' noise
    camera = data_shift.variant_blocks('soft, random white balance and colour matrix', seed=0, block=64, limit=1)
    for (_, noisy, clean), (_, base_noisy, base_clean) in zip(camera, base):
        assert not np.array_equal(clean, base_clean)
        noise, base_noise = (n.reshape(-1, 3) - c.reshape(-1, 3) for n, c in ((noisy, clean), (base_noisy, base_clean)))
        assert np.corrcoef(noise[:, 0], noise[:, 1])[0, 1] < np.corrcoef(base_noise[:, 0], base_noise[:, 1])[0, 1] - 0.2
    output = np.full((8, 8, 3), 10, np.uint8)
    output[..., 0] += 2  # blue (BGR) 2 grey levels too bright
    output[..., 2] -= 3  # red 3 too dark
    cast, low, *mean_rgb = data_shift.errors(output, np.full((8, 8, 3), 10, np.uint8))
    assert cast == 3 and mean_rgb == [-3, 0, 2] and low == pytest.approx(np.sqrt(13 / 3))


@pytest.mark.slow
def test_bench_evaluates_a_demo_runs_settings_on_the_variants(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    demo = tmp_path / 'demo'
    result = subprocess.run([sys.executable, '-m', 'amsnet_basicsr.demo', '--quick', '--out', str(demo)], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    bench = subprocess.run([sys.executable, str(SCRIPT), '--demo', str(demo), str(demo),
                            '--out', str(tmp_path / 'bench'), '--block', '48', '--limit', '1', '--adapt-steps', '2',
                            '--variants', '5', '--train-on', 'test-photos', 'other-photos', '--quick'], env=env,
                           cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert bench.returncode == 0, bench.stderr[-2000:]
    report = json.loads((tmp_path / 'bench' / 'data_shift.json').read_text())
    chosen = json.loads((demo / 'results.json').read_text())['baseline_parameters']
    assert list(report['variants']) == [list(data_shift.VARIANTS)[5]] and report['seeds'] == [0, 0]
    for rows in report['variants'].values():
        methods = [(row['method'], row['setting']) for row in rows]
        assert methods[0] == ('noisy input', '')
        nlm = f'{chosen["OpenCV NLM"]:g} x noise estimate, tuned on the demo\'s validation block'
        assert ('OpenCV NLM', nlm) in methods
        assert methods[6][0] == data_shift.ENSEMBLE_STUDENT
        assert methods[7] == ('AMSNet-B-E + adaptation (per block)', 'the demo\'s model, amsnet-denoise --adapt 2')
        trained = ['AMSNet-B-E (MMDB + R3)', 'AMSNet-D student (one pass)', data_shift.ENSEMBLE_STUDENT]
        assert [method for method, setting in methods[8:]] == trained * 2
        assert all(setting.startswith(data_shift.TRAINING_SETS['test-photos']) for _, setting in methods[8:11])
        assert all(setting.startswith(data_shift.TRAINING_SETS['other-photos']) for _, setting in methods[11:])
        assert all(0 < row['psnr'] < 100 and row['cast'] >= 0 and row['low_frequency'] > 0 for row in rows)
        # the same seed twice, the same numbers (training resumed, not redone); BM3D's first call differs by ~1e-4 dB
        assert all(row['psnr_std'] < 1e-3 for row in rows), rows
    # the photos amsnet-train-folder trained on are the noisy ones of the variant's camera, nothing else
    variant = list(data_shift.VARIANTS)[5]
    for training_set, names in (('test-photos', demo_data.TEST_IMAGES),
                                ('other-photos', RECIPES['quick']['train_images'])):
        folder = tmp_path / 'bench' / 'train_folder_runs' / 'seed_0' / data_shift.slug(variant) / training_set
        folder = folder / 'photos'
        assert sorted(path.stem for path in folder.iterdir()) == sorted(names)
        noisy = data_shift.variant_photos(variant, seed=0, names=names[:1])[0][1]
        written = cv2.imread(str(folder / f'{names[0]}.png'))[..., ::-1]
        assert np.array_equal(written, np.rint(noisy * 255).astype(np.uint8))
    missing = subprocess.run([sys.executable, str(SCRIPT), '--demo', str(tmp_path), '--out',
                              str(tmp_path / 'x')], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and 'no teacher options' in missing.stderr
