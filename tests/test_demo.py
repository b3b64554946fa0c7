"""The demo (`python -m amsnet_basicsr.demo`) runs the product path: it writes the bundled NOISY photos into a folder,
trains on them with `amsnet-train-folder`'s own function, and only afterwards makes the clean blocks it scores on.

The fast tests run it in this process with the stand-in trainer (no process) and a cheap stand-in for BM3D; the slow
ones run `--quick` as a user does. The quick configuration checks the pipeline, not the denoising quality.
"""
import builtins
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from amsnet_basicsr import baselines, camera_noise, demo, demo_data, image_io, recipes, train_folder

from conftest import REPO

from basicsr.utils import tensor2img

QUICK = recipes.RECIPES['quick']
PHOTOS = sorted([*QUICK['train_images'], demo_data.VAL_IMAGE])
METHODS = ['noisy input', 'OpenCV NLM (tuned on validation)', 'BM3D (tuned on validation)']


@pytest.fixture
def cheap_bm3d(monkeypatch):
    """BM3D (seconds per block on a CPU) replaced by the identity: the demo's plumbing, not BM3D, is under test."""
    monkeypatch.setitem(baselines.FILTERS, 'BM3D', (lambda noisy, factor: noisy, baselines.BM3D_FACTORS))


def test_the_training_opens_only_the_noisy_photos_and_no_clean_image_exists_before_it(tmp_path, monkeypatch,
                                                                                       stand_in_trainer, cheap_bm3d):
    """The issue's check that the command opens no clean file: while amsnet-train-folder runs, no clean pixel has been
    made (``camera_noise_pair``, the only maker of clean images, is first called after it), its photo folder holds
    exactly the noisy photos, and every file it opens lies in that folder or in its own output folder (or is
    /dev/null, where the LMDB packing's console output goes)."""
    out = tmp_path / 'demo'
    clean_made, opened, seen = [], [], {}
    make_pair, open_file, run_folder = camera_noise.camera_noise_pair, builtins.open, train_folder.run

    def counting_pair(*args, **kwargs):
        clean_made.append(args[0].shape)
        return make_pair(*args, **kwargs)

    def recording_open(file, *args, **kwargs):
        if seen.get('training'):
            opened.append(os.path.realpath(file) if isinstance(file, (str, os.PathLike)) else file)
        return open_file(file, *args, **kwargs)

    def watched_run(args, log):
        seen.update(training=True, clean_made_before=len(clean_made), input=args.input, out=args.out,
                    photos=sorted(os.listdir(args.input)))
        try:
            return run_folder(args, log)
        finally:
            seen.update(training=False, clean_made_during=len(clean_made) - seen['clean_made_before'])

    monkeypatch.setattr(camera_noise, 'camera_noise_pair', counting_pair)
    monkeypatch.setattr(builtins, 'open', recording_open)
    monkeypatch.setattr(train_folder, 'run', watched_run)
    summary = demo.run_demo(['--quick', '--out', str(out), '--seed', '2'])

    assert seen['clean_made_before'] == 0 and seen['clean_made_during'] == 0 and clean_made  # made after training
    assert seen['input'] == str(out / 'photos') and seen['out'] == str(out / 'model')
    assert seen['photos'] == [f'{name}.png' for name in PHOTOS]
    allowed = (os.path.realpath(out / 'photos') + os.sep, os.path.realpath(out / 'model') + os.sep)
    assert opened and [path for path in opened if path != os.devnull and not (
        isinstance(path, str) and path.startswith(allowed))] == []
    for name in PHOTOS:  # the camera's noisy output, byte for byte, and not its clean exposure
        side = QUICK['max_eval_side'] if name == demo_data.VAL_IMAGE else QUICK['max_train_side']
        noisy, clean = make_pair(demo_data.photo(name, max_side=side), demo_data.noise_rng(2, name))
        written = image_io.read(str(out / 'photos' / f'{name}.png'))
        np.testing.assert_array_equal(written, recipes.to_uint8(noisy))
        assert not np.array_equal(written, recipes.to_uint8(clean))
    # the noisy validation block that tunes the filters is cut from the photo that was trained on
    (key, val_noisy, _), = demo_data.validation_blocks(seed=2, max_side=QUICK['max_eval_side'],
                                                        block=QUICK['val_block'])
    top, left = (int(part) for part in key.rsplit('_', 2)[1:])
    photo = demo_data.noisy_photo(demo_data.VAL_IMAGE, seed=2, max_side=QUICK['max_eval_side'])
    np.testing.assert_array_equal(val_noisy, photo[top:top + len(val_noisy), left:left + len(val_noisy)])
    assert [row['method'] for row in summary['rows']][:3] == METHODS
    assert summary['rows'][3]['method'].startswith('AMSNet-B-E') and summary['rows'][4]['method'].startswith(
        'AMSNet-D student')
    assert summary['teacher_checkpoint'].startswith('model/experiments/') and summary['denoise_options'] == \
        'model/denoise.yml'


def test_scores_are_the_denoisers_outputs_on_the_held_apart_blocks(tmp_path, stand_in_trainer, cheap_bm3d):
    """The student row is AMSNetDenoiser.from_options(denoise.yml) on the noisy test blocks, scored with BasicSR's
    metrics against the clean blocks; the B-E row is the chosen checkpoint through the same object."""
    from amsnet_basicsr.inference import AMSNetDenoiser
    out = tmp_path / 'demo'
    summary = demo.run_demo(['--quick', '--out', str(out)])
    test = demo_data.test_blocks(seed=0, max_side=QUICK['max_eval_side'], block=QUICK['test_block'],
                                 limit=QUICK['max_test_blocks'], names=QUICK['test_images'])
    assert summary['test_blocks'] == [key for key, _, _ in test]
    student = AMSNetDenoiser.from_options(str(out / 'model' / 'denoise.yml'))
    assert student.scheme.single_pass
    expected = [recipes.scores(recipes.to_uint8(student(noisy)), recipes.to_uint8(clean))[0]
                for _, noisy, clean in test]
    assert summary['rows'][-1]['psnr_per_block'] == pytest.approx(expected, abs=1e-9)
    assert summary['rows'][0]['psnr_per_block'] == pytest.approx(
        [recipes.scores(recipes.to_uint8(noisy), tensor2img(recipes.to_tensor(clean)))[0] for _, noisy, clean in test])
    table = (out / 'results.md').read_text()
    assert all(f'| {row["method"]} |' in table for row in summary['rows'])
    assert json.loads((out / 'results.json').read_text()) == json.loads(json.dumps(summary))


def test_demo_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path, capsys):
    out = tmp_path / 'precious'
    out.mkdir()
    (out / 'thesis.txt').write_text('do not delete')
    assert demo.main(['--quick', '--out', str(out), '--overwrite']) == 2
    assert 'holds no amsnet-demo run' in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ['thesis.txt'] and (out / 'thesis.txt').read_text() == 'do not delete'


def test_several_seeds_are_summarised_as_mean_and_sample_spread():
    per_seed = [{'seed': seed, 'iterations': 5, 'test_blocks': ['a'],
                 'rows': [{'method': 'noisy input', 'psnr': 20.0, 'ssim': 0.5},
                          {'method': 'trained', 'psnr': psnr, 'ssim': ssim}]}
                for seed, psnr, ssim in ((0, 30.0, 0.8), (1, 31.0, 0.9), (2, 32.0, 0.7))]
    summary = demo.seeds_summary(per_seed, total_seconds=1.0)
    trained = summary['rows'][1]
    assert summary['seeds'] == [0, 1, 2] and trained['psnr_per_seed'] == [30.0, 31.0, 32.0]
    assert (trained['psnr_mean'], trained['psnr_std'], trained['psnr_min'], trained['psnr_max']) == (
        31.0, 1.0, 30.0, 32.0)
    assert summary['rows'][0]['psnr_std'] == 0.0


def test_two_seed_demo_reports_each_seed_and_their_spread(tmp_path, stand_in_trainer, cheap_bm3d):
    """--seeds runs one demo per seed in seed_<s>/ (each its own photos and amsnet-train-folder output) and summarises
    the per-seed rows; --student-iters 0 leaves the B-E model as denoise.yml and no student row."""
    out = tmp_path / 'seeds'
    summary = demo.run_demo(['--quick', '--student-iters', '0', '--seeds', '2', '--seed', '4', '--out', str(out)])
    assert summary['seeds'] == [4, 5] and json.loads((out / 'results.json').read_text())['seeds'] == [4, 5]
    per_seed = [json.loads((out / f'seed_{seed}' / 'results.json').read_text()) for seed in (4, 5)]
    assert [row['method'] for row in summary['rows']][:3] == METHODS and len(summary['rows']) == 4
    for index, row in enumerate(summary['rows']):
        assert row['psnr_per_seed'] == [run['rows'][index]['psnr'] for run in per_seed]
    assert all((out / f'seed_{seed}' / 'model' / 'denoise.yml').is_file() for seed in (4, 5))
    assert not (out / 'seed_4' / 'model' / 'distill_folder.yml').exists()
    assert '±' in (out / 'results.md').read_text()


@pytest.mark.slow
def test_quick_demo_trains_with_train_folder_and_writes_table_and_images(tmp_path):
    """`python -m amsnet_basicsr.demo --quick` as a user runs it: amsnet-train-folder's output in model/, the table
    printed and written, one side-by-side image per held-apart block."""
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    result = subprocess.run([sys.executable, '-m', 'amsnet_basicsr.demo', '--quick', '--out', str(out), '--iters', '6',
                             '--seed', '3'], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / 'results.json').read_text())
    assert (summary['iterations'], summary['seed'], summary['student_iterations']) == (6, 3, QUICK['student_iters'])
    assert [row['method'] for row in summary['rows']] == METHODS + [
        'AMSNet-B-E (6 it, checkpoint by masked hold-out loss)',
        f'AMSNet-D student ({QUICK["student_iters"]} it, one pass: denoise.yml)']
    for row in summary['rows']:
        assert 0 < row['psnr'] < 100 and 0 < row['ssim'] <= 1
        assert len(row['psnr_per_block']) == len(summary['test_blocks'])
    assert (out / 'results.md').read_text().strip() in result.stdout
    assert sorted(os.listdir(out / 'photos')) == [f'{name}.png' for name in PHOTOS]
    model = out / 'model'
    assert {'denoise.yml', 'model.pth', 'train_folder.yml', 'distill_folder.yml'} <= set(os.listdir(model))
    assert (out / summary['teacher_checkpoint']).is_file()
    images = sorted((out / 'images').iterdir())
    assert [p.name for p in images] == sorted(f'{key}_side_by_side.png' for key in summary['test_blocks'])
    for path in images:  # noisy | NLM | BM3D | AMSNet-B-E | AMSNet-D | clean, 4-px gaps
        block = QUICK['test_block']
        assert image_io.read(str(path)).shape[:2] == (block, 6 * block + 5 * 4)
    assert 'left to right: noisy | OpenCV NLM | BM3D | AMSNet-B-E | AMSNet-D | clean' in result.stdout
