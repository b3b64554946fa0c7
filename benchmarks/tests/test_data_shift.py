"""The data-shift bench: one demo run's settings, evaluated on every camera-pipeline variant, nothing re-tuned; the
variants' noise, their photos, and the whole-photo path through the product's inference object; the re-scoring of
its trained students with the noise mean (benchmarks/rescore_students.py)."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import data_shift
import numpy as np
import pytest
import rescore_students
import yaml

from amsnet_basicsr import demo_data
from amsnet_basicsr.distill import classical
from amsnet_basicsr.recipes import RECIPES

from helpers import GOLDEN, GOLDEN_NETWORKS, GOLDEN_SCHEMES, REPO

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


def test_noise_autocorrelation_measures_how_far_the_noise_spreads():
    """White noise is uncorrelated at every lag; a 2x2 box sum of it shares two of four samples with its neighbour
    one pixel away along either axis (correlation 2/4) and none further."""
    white = np.random.default_rng(0).normal(size=(400, 400, 3))
    assert np.abs(data_shift.noise_autocorrelation(white, np.zeros_like(white))).max() < 0.02
    box = white[:-1, :-1] + white[1:, :-1] + white[:-1, 1:] + white[1:, 1:]
    assert data_shift.noise_autocorrelation(box, np.zeros_like(box), lags=(1, 2, 3)) == pytest.approx(
        [0.5, 0, 0], abs=0.02)


def test_in_camera_variants_spread_the_noise_like_a_phone():
    """The in-camera pipeline's noise stays correlated out to 4-6 px, decreasing with the lag, close to the real
    photos' figures it was matched to (REAL_NOISE_AUTOCORRELATION), and far beyond the bilinear demosaic's (which
    is ~0.05 from 3 px on: the clipped noise's mean varying over the scene, not a spread of the noise)."""
    names = list(data_shift.VARIANTS)
    for sharpness, in_camera in ((names[0], 'soft, in-camera NR + sharpening + JPEG 85'),
                                 (names[1], 'native sharpness, in-camera NR + sharpening + JPEG 85')):
        bilinear, processed = (data_shift.noise_statistics(data_shift.variant_photos(variant, seed=0))
                               for variant in (sharpness, in_camera))
        correlation = processed['autocorrelation']
        assert all(near > far for near, far in zip(correlation, correlation[1:])), correlation
        assert correlation[data_shift.LAGS.index(4)] > bilinear['autocorrelation'][data_shift.LAGS.index(4)] + 0.1
        # the grid IN_CAMERA was chosen on matched the real figures within 0.03 on the validation photo; the test
        # photos' content (JPEG's error on it, the clipping) moves them by up to ~0.04
        assert correlation == pytest.approx(list(data_shift.REAL_NOISE_AUTOCORRELATION.values()), abs=0.05)
        assert processed['std'] < bilinear['std']  # noise reduction: less noise, spread wider


def test_other_photos_are_another_source_at_native_sharpness():
    """The other-source photos are none of the demo's photos (nor the stereo twin of its motorcycle_left), each at
    least 512 px on a side at native sharpness, coloured, through the demo's bilinear camera."""
    demo_photos = {*demo_data.TRAIN_IMAGES, demo_data.VAL_IMAGE, *demo_data.TEST_IMAGES}
    assert not set(data_shift.OTHER_PHOTOS) & demo_photos
    assert not any(name.split('_')[0] in {photo.split('_')[0] for photo in demo_photos}
                   for name in data_shift.OTHER_PHOTOS)
    variant = 'other photos, native sharpness'
    photos = data_shift.variant_photos(variant, seed=0)
    assert [name for name, _, _ in photos] == list(data_shift.OTHER_PHOTOS)
    for name, _, clean in photos:
        assert min(clean.shape[:2]) >= 512 and clean.shape[:2] == demo_data.load_sample(name).shape[:2]
        tinted = len(set(data_shift.OTHER_PHOTOS[name])) > 1
        assert (np.ptp(clean.mean((0, 1))) > 0.05) == tinted, name  # the grey one stays grey through the camera
    # the demo's camera: the bilinear demosaic's correlation (~0.6 at 1 px, ~0.15-0.2 at 2 px, none from 3 px)
    correlation = data_shift.noise_statistics(photos)['autocorrelation']
    assert 0.5 < correlation[0] < 0.7 and correlation[1] < 0.25 and max(correlation[2:]) < 0.05


def golden_models():
    """The golden checkpoints (tests/golden) as a demo's models: a mask-scheme B-E and a single-pass student, each
    with 32-px tiles, so that a photo of a few dozen px goes through several tiles."""
    def options(kind):
        return {'name': f'golden_{kind}', 'model_type': 'AMSNetModel', 'num_gpu': 0, 'scale': 1,
                'network_g': dict(GOLDEN_NETWORKS[kind]), 'amsnet': GOLDEN_SCHEMES[kind],
                'path': {'pretrain_network_g': str(GOLDEN / f'{kind}.pth'), 'param_key_g': 'params',
                         'strict_load_g': True}}
    return {'teacher': (options('mask'), None), 'student': (options('student'), None)}


def test_whole_photos_go_through_the_products_denoiser_and_its_tiles(tmp_path, monkeypatch):
    """--whole-photos: every AMSNet row is AMSNetDenoiser.from_options called on each whole photo, larger than its
    tile; the scores are the same as that object's own output, per photo; the table records tiles and speed."""
    from amsnet_basicsr.inference import AMSNetDenoiser
    from amsnet_basicsr.recipes import scores, to_uint8
    calls = []
    denoise_array = AMSNetDenoiser.denoise_array
    monkeypatch.setattr(AMSNetDenoiser, 'denoise_array',
                        lambda self, image, **kwargs: calls.append(image.shape) or denoise_array(self, image, **kwargs))
    demo = dict(golden_models(), filters={'OpenCV NLM': 4.5}, seed=0)
    variant = 'soft, in-camera NR + sharpening + JPEG 85'
    result = data_shift.evaluate_variant(demo, variant, whole_photos=True, max_side=40, block=None, limit=None,
                                         adapt_steps=1, train_dir=str(tmp_path), quick=True, log=lambda message: None)
    photos = data_shift.variant_photos(variant, seed=0, max_side=40)
    shapes = [noisy.shape for _, noisy, _ in photos]
    assert shapes == [(80, 80, 3), (54, 80, 3)]  # astronaut, chelsea (300 x 451): reduced to 40 px, enlarged 2x
    rows = {row['method']: row for row in result['rows']}
    models = [method for method in rows if method.startswith('AMSNet')]
    assert models == ['AMSNet-B (MMDB)', 'AMSNet-B-E (MMDB + R3)', 'AMSNet-D student (one pass)',
                      data_shift.ENSEMBLE_STUDENT, 'AMSNet-B-E + adaptation (per photo)']
    assert calls == shapes * len(models)  # one call per whole photo and model row
    for method in models:
        assert rows[method]['tiles'] > len(photos) and rows[method]['megapixels_per_second'] > 0
        assert list(rows[method]['psnr_per_image']) == list(demo_data.TEST_IMAGES)
    student = AMSNetDenoiser.from_options(*demo['student'])
    for name, noisy, clean in photos:
        direct = scores(to_uint8(student(noisy)), to_uint8(clean))[0]
        assert rows['AMSNet-D student (one pass)']['psnr_per_image'][name] == pytest.approx(direct, abs=1e-9)
    assert rows['noisy input']['megapixels_per_second'] is None and rows['OpenCV NLM']['train_seconds'] is None
    assert result['noise']['lags'] == list(data_shift.LAGS)
    table = data_shift.aggregate([{variant: result}, {variant: result}])
    text = data_shift.markdown(table, seeds=[0, 0], demo_folders=['a', 'b'], command='c', whole_photos=True)
    assert 'Scored on the whole test photos' in text and data_shift.noise_line(result['noise']) in text
    assert 'PSNR astronaut, chelsea' in text


@pytest.mark.slow
def test_bench_evaluates_a_demo_runs_settings_on_the_variants(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    demo = tmp_path / 'demo'
    result = subprocess.run([sys.executable, '-m', 'amsnet_basicsr.demo', '--quick', '--out', str(demo)], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    bench = subprocess.run([sys.executable, str(SCRIPT), '--demo', str(demo), '--seeds', '0', '0',
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
        assert methods[3][0] == 'BM3D, correlated noise'  # the PSD measured on the noisy photos themselves
        assert methods[7][0] == data_shift.ENSEMBLE_STUDENT
        assert methods[8] == ('AMSNet-B-E + adaptation (per block)', 'the demo\'s model, amsnet-denoise --adapt 2')
        trained = ['AMSNet-B-E (MMDB + R3)', 'AMSNet-D student (one pass)', data_shift.ENSEMBLE_STUDENT]
        assert [method for method, setting in methods[9:]] == trained * 2
        assert all(setting.startswith(data_shift.TRAINING_SETS['test-photos']) for _, setting in methods[9:12])
        assert all(setting.startswith(data_shift.TRAINING_SETS['other-photos']) for _, setting in methods[12:])
        assert all(0 < row['psnr'] < 100 and row['cast'] >= 0 and row['low_frequency'] > 0 for row in rows)
        # the same seed twice, the same numbers (training resumed, not redone); BM3D's first call differs by ~1e-4 dB
        assert all(row['psnr_std'] < 1e-3 for row in rows), rows
        assert all(row['train_cpu_seconds'] > 0 and row['train_seconds'] > 0 for row in rows[9:])
        assert all(row['train_seconds'] is None for row in rows[:9])
        assert all(row['megapixels_per_second'] > 0 for row in rows[1:])
    noise = report['noise'][list(data_shift.VARIANTS)[5]]
    assert noise['lags'] == list(data_shift.LAGS) and len(noise['autocorrelation']) == len(data_shift.LAGS)
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
    # benchmarks/rescore_students.py: the runs' students with and without the noise mean measured on their tiles
    anchored = tmp_path / 'bench' / 'train_folder_runs' / 'seed_0' / data_shift.slug(variant) / 'test-photos'
    options = yaml.safe_load((anchored / 'train_folder' / 'denoise.yml').read_text())
    options['amsnet']['low_frequency_anchor'] = 16  # the quick recipe keeps none; the folder recipe keeps 32 px
    (anchored / 'train_folder' / 'denoise.yml').write_text(yaml.safe_dump(options))
    assert rescore_students.main([str(tmp_path / 'bench'), '--block', '48', '--limit', '1', '--json',
                                  str(tmp_path / 'rescored.json')]) == 0
    [(folder, rescored)] = json.loads((tmp_path / 'rescored.json').read_text()).items()  # the other run: no anchor
    assert folder.endswith(osp.join('test-photos', 'train_folder')) and rescored['seed'] == 0
    assert np.array(rescored['anchor_bias']).shape == (classical.BIAS_LEVELS, 4)
    assert all(0 < rescored[label][0] < 100 and rescored[label][2] >= 0 for label in ('no bias', 'bias'))
    missing = subprocess.run([sys.executable, str(SCRIPT), '--demo', str(tmp_path), '--out',
                              str(tmp_path / 'x')], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and 'no teacher options' in missing.stderr
    two = subprocess.run([sys.executable, str(SCRIPT), '--demo', str(demo), str(demo), '--seeds', '1', '--out',
                          str(tmp_path / 'x')], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert two.returncode == 2 and '--seeds: give one --demo folder' in two.stderr
