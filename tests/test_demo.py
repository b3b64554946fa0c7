"""End to end: `python -m amsnet_basicsr.demo --quick` builds the data, trains through BasicSR and tests.

The quick configuration checks the pipeline (data split, LMDB of noisy tiles only, options file, training
subprocess, held-apart evaluation, outputs), not the denoising quality: that is the full demo's job.
"""
import json
import os
import subprocess
import sys

import cv2
import pytest
import yaml

pytestmark = pytest.mark.slow  # every test here runs the demo in a subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def test_quick_demo_writes_table_images_and_curve(demo_run):
    out, result = demo_run
    summary = json.loads((out / 'results.json').read_text())
    assert summary['iterations'] == 6 and summary['seed'] == 3
    methods = [row['method'] for row in summary['rows']]
    assert methods[0] == 'noisy input' and any('trained' in m and 'R3' in m for m in methods)
    for row in summary['rows']:
        assert 0 < row['psnr'] < 100 and 0 < row['ssim'] <= 1
        assert len(row['psnr_per_block']) == len(summary['test_blocks'])
    table = (out / 'results.md').read_text()
    assert '| noisy input |' in table and table.strip() in result.stdout
    images = sorted((out / 'images').iterdir())
    assert len(images) == len(summary['test_blocks']) > 0
    for path in images:
        side_by_side = cv2.imread(str(path))
        block = cv2.imread(str(out / 'data' / 'test' / 'noisy' / path.name.replace('_noisy_denoised_clean', '')))
        assert side_by_side.shape[0] == block.shape[0] and side_by_side.shape[1] == 3 * block.shape[1] + 8
    curve = (out / 'curve.csv').read_text().splitlines()
    assert curve[0] == 'iteration,l_mask,val_psnr' and len(curve) > 2
    assert (out / 'experiments' / 'AMSNet_demo' / 'models' / 'net_g_latest.pth').is_file()


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
    test_images = {name.rsplit('_', 2)[0] for name in os.listdir(out / 'data' / 'test' / 'noisy')}
    val_images = {name.rsplit('_', 2)[0] for name in os.listdir(out / 'data' / 'val' / 'noisy')}
    assert train_images and test_images and val_images
    assert not train_images & test_images and not train_images & val_images and not val_images & test_images
    # The LMDB holds the noisy tiles, byte for byte (PNG), never the clean images.
    tiles = out / 'data' / 'train_noisy_tiles'
    assert sorted(keys) == sorted(p.stem for p in tiles.iterdir())
    assert 'clean' not in lmdb and all('clean' not in key for key in keys)


def test_demo_refuses_to_overwrite_a_non_demo_folder(tmp_path):
    out = tmp_path / 'precious'
    out.mkdir()
    (out / 'thesis.txt').write_text('do not delete')
    result = _run_demo(out, '--overwrite')
    assert result.returncode != 0 and 'not a previous demo output' in result.stderr
    assert (out / 'thesis.txt').read_text() == 'do not delete'
