"""The demo (`python -m amsnet_basicsr.demo`): its evaluation is the model's own inference plus BasicSR's metrics,
its speed probe times the model's own training step, its option file builds the model it describes, its curve comes
from the run's TensorBoard events; end to end (slow): `--quick` builds the data, trains through BasicSR and tests.

The quick configuration checks the pipeline, not the denoising quality: that is the full demo's job.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from amsnet_basicsr import demo, demo_data, recipes
from amsnet_basicsr.data.noisy_image_dataset import decode_image
from amsnet_basicsr.models.amsnet_model import AMSNetModel
from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils import tensor2img

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = recipes.RECIPES['quick']


def quick_options(tmp_path, iters=4):
    data = {'lmdb': str(tmp_path / 'train.lmdb'),
            'val_folders': {'noisy': str(tmp_path / 'noisy'), 'clean': str(tmp_path / 'clean')}}
    return recipes.mask_stage_options(QUICK, data, seed=0, iters=iters)


def test_evaluation_is_the_models_own_inference_and_basicsr_metrics(tmp_path):
    options = quick_options(tmp_path)
    blocks = demo_data.test_blocks(seed=0, max_side=48, block=32, limit=2, names=demo_data.TEST_IMAGES[:1])
    torch.manual_seed(0)
    model = recipes.in_process_model(options, is_train=False, r3_enabled=True)
    results = demo.evaluate(model, blocks)
    assert [r['key'] for r in results] == [key for key, _, _ in blocks]
    for result, (_, noisy, clean) in zip(results, blocks):
        model.feed_data({'lq': torch.from_numpy(noisy).permute(2, 0, 1)[None]})
        model.test()
        denoised = tensor2img(model.output)
        clean8 = tensor2img(torch.from_numpy(clean).permute(2, 0, 1))
        np.testing.assert_array_equal(result['denoised'], denoised)
        np.testing.assert_array_equal(result['clean'], clean8)
        assert result['psnr'] == calculate_psnr(denoised, clean8, crop_border=0)
        assert result['ssim'] == calculate_ssim(denoised, clean8, crop_border=0)
    # R3 is the model's amsnet.r3 option: switching it off changes the output of the same weights
    plain = demo.evaluate(recipes.in_process_model(options, is_train=False, r3_enabled=False,
                                                   state_dict=model.net_g.state_dict()), blocks)
    assert not np.array_equal(plain[0]['denoised'], results[0]['denoised'])


def test_speed_probe_times_the_models_own_training_steps(tmp_path, monkeypatch):
    calls = []
    original = AMSNetModel.optimize_parameters

    def counting(self, current_iter):
        calls.append((type(self).__name__, self.lq.shape))
        return original(self, current_iter)

    monkeypatch.setattr(AMSNetModel, 'optimize_parameters', counting)
    data = {'train': demo_data.training_images(seed=0, max_side=48, names=demo_data.TRAIN_IMAGES[:1])}
    iters, rate = demo.iterations_for_minutes(quick_options(tmp_path), data, 0.5)
    assert calls == [('AMSNetModel', (QUICK['batch'], 3, QUICK['crop'], QUICK['crop']))] * 12
    assert rate > 0 and iters == max(10, int(30 * rate))


def test_option_file_builds_the_model_it_describes(tmp_path):
    options = quick_options(tmp_path, iters=7)
    path = recipes.write_options(str(tmp_path), options, 'train_demo.yml')
    with open(path) as handle:
        loaded = yaml.safe_load(handle)
    assert loaded == options
    scheduler = loaded['train']['scheduler']
    assert scheduler['type'] == 'CosineAnnealingRestartLR' and scheduler['periods'] == [7]
    model = recipes.in_process_model(loaded, is_train=True)
    assert isinstance(model, AMSNetModel) and model.stage == 'mask'
    assert type(model.net_g).__name__ == loaded['network_g']['type']


def test_curve_comes_from_the_runs_tensorboard_events(tmp_path):
    from torch.utils.tensorboard import SummaryWriter
    options = quick_options(tmp_path, iters=4)
    writer = SummaryWriter(str(tmp_path / 'tb_logger' / options['name']))
    for step in range(1, 5):
        writer.add_scalar('losses/l_mask', 0.1 / step, step)
    val = f'metrics/{options["datasets"]["val"]["name"]}/psnr'
    writer.add_scalar(val, 25.0, 2)
    writer.add_scalar(val, 26.0, 4)
    writer.add_scalar(val, 26.0, 5)  # BasicSR's closing validation, one step past total_iter: the same network
    writer.close()
    curve = demo.read_curve(str(tmp_path), options)
    assert [row[0] for row in curve] == [1, 2, 3, 4]
    assert [row[2] for row in curve] == [None, 25.0, None, 26.0]
    assert curve[0][1] == pytest.approx(0.1) and curve[3][1] == pytest.approx(0.025)


# ----------------------------------------------------------------------------------------------- end to end (slow)
def _run_demo(out, *extra):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, '-m', 'amsnet_basicsr.demo', '--quick', '--out', str(out), *extra],
                          cwd=str(out.parent), env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo') / 'out'
    result = _run_demo(out, '--iters', '6', '--seed', '3')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


@pytest.mark.slow
def test_quick_demo_writes_table_images_and_curve(demo_run):
    out, result = demo_run
    summary = json.loads((out / 'results.json').read_text())
    assert summary['iterations'] == 6 and summary['seed'] == 3
    methods = [row['method'] for row in summary['rows']]
    assert methods[0] == 'noisy input' and any('trained' in m and 'R3' in m for m in methods)
    assert methods[1:3] == ['OpenCV NLM (tuned on validation)', 'BM3D (tuned on validation)']
    for row in summary['rows']:
        assert 0 < row['psnr'] < 100 and 0 < row['ssim'] <= 1
        assert len(row['psnr_per_block']) == len(summary['test_blocks'])
    table = (out / 'results.md').read_text()
    assert '| noisy input |' in table and table.strip() in result.stdout
    images = sorted((out / 'images').iterdir())
    assert [p.name for p in images] == sorted(f'{key}_side_by_side.png' for key in summary['test_blocks'])
    for path in images:  # noisy | NLM | BM3D | AMSNet-B-E | AMSNet-D | clean, 4-px gaps
        side_by_side = decode_image(path.read_bytes(), str(path))
        block = QUICK['test_block']
        assert side_by_side.shape[:2] == (block, 6 * block + 5 * 4)
    assert 'side-by-side images, left to right: noisy | OpenCV NLM | BM3D | AMSNet-B-E | AMSNet-D | clean' in result.stdout
    plot = decode_image((out / 'curve.png').read_bytes(), 'curve.png')
    assert plot.ndim == 3 and (plot < 250).any(axis=2).mean() > 0.01  # axes, text and two curves are drawn
    curve = (out / 'curve.csv').read_text().splitlines()
    assert curve[0] == 'iteration,l_mask,val_psnr'
    rows = [line.split(',') for line in curve[1:]]
    assert [int(r[0]) for r in rows] == list(range(0, 7))           # untrained point, then every iteration
    assert rows[-1][1] and rows[-1][2] and not rows[0][1] and rows[0][2]  # the last row: L_m and validation
    assert (out / 'experiments' / 'AMSNet_demo' / 'models' / 'net_g_latest.pth').is_file()
    assert methods[-1].startswith('AMSNet-D student of B-E (10 it, NAFNet')  # the distillation step ran
    assert (out / 'experiments' / 'AMSNet_D_demo' / 'models' / 'net_g_latest.pth').is_file()


@pytest.mark.slow
def test_quick_demo_distils_from_teacher_targets_of_the_noisy_tiles(demo_run):
    """The student's training set is the noisy tiles and the teacher's targets under the same keys; nothing
    clean."""
    out, _ = demo_run
    options = yaml.safe_load((out / 'distill_demo.yml').read_text())
    train = options['datasets']['train']
    assert options['train']['stage'] == 'distill' and options['amsnet']['single_pass'] is True
    assert train['dataroot_lq'] == yaml.safe_load((out / 'train_demo.yml').read_text())['datasets']['train'][
        'dataroot_lq']
    info = json.loads(open(os.path.join(train['dataroot_gt'], 'amsnet_teacher.json')).read())
    beside = os.path.dirname(os.path.abspath(train['dataroot_gt']))  # recorded relative to the targets' folder
    assert info['source'] == os.path.relpath(os.path.abspath(train['dataroot_lq']), beside)
    assert info['weights'].endswith('AMSNet_demo/models/net_g_latest.pth')
    keys = [open(os.path.join(root, 'meta_info.txt')).read().split() for root in (train['dataroot_lq'],
                                                                                  train['dataroot_gt'])]
    assert sorted(keys[0][0::3]) == sorted(keys[1][0::3])


@pytest.mark.slow
def test_quick_demo_trains_on_noisy_tiles_only_and_keeps_splits_apart(demo_run):
    out, _ = demo_run
    options = yaml.safe_load((out / 'train_demo.yml').read_text())
    assert options['model_type'] == 'AMSNetModel'
    train = options['datasets']['train']
    assert train['type'] == 'NoisyImageDataset' and train['io_backend']['type'] == 'lmdb'
    lmdb = train['dataroot_lq']
    assert lmdb.endswith('.lmdb') and os.path.isfile(os.path.join(lmdb, 'data.mdb'))
    keys = [line.split('.png')[0] for line in open(os.path.join(lmdb, 'meta_info.txt')) if line.strip()]
    train_images = {key.rsplit('_', 2)[0] for key in keys}
    summary = json.loads((out / 'results.json').read_text())
    test_images = {key.rsplit('_', 2)[0] for key in summary['test_blocks']}
    val_images = {name.rsplit('_', 2)[0] for name in os.listdir(out / 'data' / 'val' / 'noisy')}
    assert train_images == set(QUICK['train_images']) and test_images and val_images
    assert not train_images & test_images and not train_images & val_images and not val_images & test_images
    # The LMDB holds the noisy tiles, byte for byte (PNG), never the clean images.
    tiles = out / 'data' / 'train_noisy_tiles'
    assert sorted(keys) == sorted(p.stem for p in tiles.iterdir())
    assert 'clean' not in lmdb and all('clean' not in key for key in keys)


@pytest.mark.slow
def test_demo_refuses_to_overwrite_a_non_demo_folder(tmp_path):
    out = tmp_path / 'precious'
    out.mkdir()
    (out / 'thesis.txt').write_text('do not delete')
    result = _run_demo(out, '--overwrite')
    assert result.returncode == 2 and 'holds no amsnet-demo run' in result.stderr
    assert (out / 'thesis.txt').read_text() == 'do not delete'


def test_several_seeds_are_summarised_as_mean_and_sample_spread():
    per_seed = [{'seed': seed, 'iterations': 5, 'test_blocks': ['a'],
                 'rows': [{'method': 'noisy input', 'psnr': 20.0, 'ssim': 0.5},
                          {'method': 'trained', 'psnr': psnr, 'ssim': ssim}]}
                for seed, psnr, ssim in ((0, 30.0, 0.8), (1, 31.0, 0.9), (2, 32.0, 0.7))]
    summary = demo.seeds_summary(per_seed, total_seconds=1.0)
    trained = summary['rows'][1]
    assert summary['seeds'] == [0, 1, 2] and trained['psnr_per_seed'] == [30.0, 31.0, 32.0]
    assert (trained['psnr_mean'], trained['psnr_std'], trained['psnr_min'], trained['psnr_max']) == (31.0, 1.0, 30.0, 32.0)
    assert summary['rows'][0]['psnr_std'] == 0.0


@pytest.mark.slow
def test_two_seed_demo_reports_each_seed_and_their_spread(tmp_path):
    """--seeds runs one demo per seed in seed_<s>/ and summarises the per-seed rows (the student is skipped: its
    rows aggregate the same way, and the summary's arithmetic is checked on three seeds above)."""
    out = tmp_path / 'seeds'
    result = _run_demo(out, '--iters', '2', '--student-iters', '0', '--seeds', '2', '--seed', '4')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / 'results.json').read_text())
    assert summary['seeds'] == [4, 5]
    for row in summary['rows']:
        per_seed = [json.loads((out / f'seed_{seed}' / 'results.json').read_text()) for seed in (4, 5)]
        expected = [next(r['psnr'] for r in run['rows'] if r['method'] == row['method']) for run in per_seed]
        assert row['psnr_per_seed'] == expected
        assert abs(row['psnr_mean'] - sum(expected) / 2) < 1e-9
    assert '±' in (out / 'results.md').read_text()
