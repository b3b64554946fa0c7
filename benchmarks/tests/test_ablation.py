"""The ablation (benchmarks/ablation.py): every run trains through the registered
BasicSR model classes with BasicSR's cosine schedule, a CPU budget becomes iterations by timing the model's own
training step; end to end (slow) in its --tiny configuration every group runs and the table, numbers and figure are
written; the checkerboard measure behaves as documented."""
import itertools
import json
import subprocess
import sys

import ablation
import cv2
import numpy as np
import pytest
import torch
from apbsn import APBSNModel

from amsnet_basicsr.metrics import calculate_checkerboard, checkerboard_index
from amsnet_basicsr.models.amsnet_model import AMSNetModel
from amsnet_basicsr.scheme import pd_up

from helpers import REPO


@pytest.mark.slow
def test_ablation_tiny_writes_table_json_and_figure(tmp_path):
    out = tmp_path / 'ablation'
    result = subprocess.run([sys.executable, str(REPO / 'benchmarks' / 'ablation.py'), '--out', str(out), '--tiny',
                             '--denoisers', 'DnCNN,NAFNet,DeamNet,D_AS'],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = (out / 'ablation.md').read_text()
    for heading in ('## identity', '## denoiser', '## ratio', '## lambda', '## variants'):
        assert heading in table
    for setting in ('AP-BSN + D_AS', 'AP-BSN + D_AS + R3', 'AMSNet-B + D_A', 'AMSNet-B-E + D_AS', 'AMSNet-B + DeamNet',
                    '75% masked (k=4, m=3)',
                    'AMSNet-P, lambda=0.1', 'AMSNet-P-E (lambda=0.01)'):
        assert f'| {setting} |' in table
    numbers = json.loads((out / 'ablation.json').read_text())
    rows = numbers['rows']
    assert len(rows) == 8 + 4 + 3 + 4 + 4
    for row in rows:
        assert row['iters'] and row['train_wall_s'] >= 0 and 0 < row['psnr'] < 100
    # B and B-E of the variants group are the same trained model: same iterations, inference differs only by R3
    variants = {row['setting']: row for row in rows if row['group'] == 'variants'}
    assert variants['AMSNet-B']['iters'] == variants['AMSNet-B-E']['iters']
    figure = cv2.imread(str(out / 'ablation.png'))
    assert figure is not None and figure.shape[0] > 500 and figure.shape[1] > 500
    assert (out / 'ablation.log').read_text().count('PSNR') >= len(rows)


@pytest.fixture
def training_steps(monkeypatch):
    """(model class, stage, learning rate, batch shape) of every training step (one per model and iteration, also
    when a subclass's optimize_parameters calls its parent's)."""
    steps, models = {}, itertools.count()
    for cls in (AMSNetModel, APBSNModel):
        def counting(self, current_iter, original=cls.optimize_parameters):
            model = self.__dict__.setdefault('_probe_model_number', next(models))  # id() is reused after GC
            steps.setdefault((model, current_iter), (type(self).__name__, getattr(self, 'stage', None),
                                                     self.get_current_learning_rate()[0], tuple(self.lq.shape)))
            return original(self, current_iter)
        monkeypatch.setattr(cls, 'optimize_parameters', counting)
    return steps


def test_every_run_trains_through_the_registered_model_with_basicsr_cosine_decay(tmp_path, training_steps):
    results = ablation.run(['--out', str(tmp_path / 'out'), '--tiny', '--groups', 'identity,variants',
                             '--iters', '4', '--finetune-iters', '3'])
    kinds = [(name, stage) for name, stage, _, _ in training_steps.values()]
    # identity: AP-BSN and AMSNet-B for D_A and D_AS; variants: B (DnCNN) and P fine-tuned from it
    assert kinds == ([('APBSNModel', 'apbsn')] * 4 + [('AMSNetModel', 'mask')] * 4) * 2 + \
        [('AMSNetModel', 'mask')] * 4 + [('AMSNetModel', 'finetune')] * 3
    lrs = [lr for _, _, lr, _ in training_steps.values()]
    config = ablation.Config()
    assert lrs[:4][0] == pytest.approx(config.lr) and all(a > b for a, b in zip(lrs[:4], lrs[1:4]))
    assert lrs[-3] == pytest.approx(config.finetune_lr) and lrs[-1] < lrs[-2] < lrs[-3]
    assert {row['setting'] for row in results} >= {'AP-BSN + D_AS + R3', 'AMSNet-P-E (lambda=0.01)'}
    assert all(row['iters'] in (4, '4+3') for row in results)


def test_a_cpu_budget_becomes_iterations_from_the_models_own_speed(monkeypatch, training_steps):
    monkeypatch.setattr(ablation, 'steps_per_second', lambda model, batch, **kwargs: 25.0)
    config = ablation.Config(budget=0.2, crop=20, batch=2, train_stride=2)
    images = [torch.rand(1, 3, 32, 32)]
    network, multiple = ablation.network_spec(ablation.Model('amsnet', 'DnCNN'), tiny=True)
    options, state, record = ablation.train(images, ablation.Model('amsnet', 'DnCNN'), network, config,
                                            multiple=multiple)
    assert record['iters'] == 5 == len(training_steps) and options['train']['scheduler']['periods'] == [5]
    assert set(state) == set(ablation.in_process_model(options, is_train=False).net_g.state_dict())


@pytest.mark.parametrize('argv,message', [(['--groups', 'identity,nonsense'], 'nonsense'),
                                          (['--denoisers', 'DnCNN,ResNet'], 'ResNet'),
                                          (['--train-dir', 'x'], '--val-noisy')])
def test_ablation_rejects_bad_arguments(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit):
        ablation.main(['--out', str(tmp_path / 'x'), *argv])
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'x').exists()


def test_matched_crop_avoids_padding_and_keeps_pixels_per_step():
    matched_crop = ablation.matched_crop
    assert matched_crop(40, 8, 5) == (40, 8)
    assert matched_crop(40, 8, 5 * 16) == (80, 2)       # DeamNet: sub-images must be multiples of 16
    assert matched_crop(40, 8, 5 * 32) == (160, 1)      # UNet: multiples of 32


def test_checkerboard_index_sees_a_periodic_pattern_and_not_a_smooth_error():
    torch.manual_seed(0)
    clean = torch.rand(1, 3, 64, 64)
    assert checkerboard_index(clean, clean) == 0
    # a 2x2-periodic offset of +-a on alternate PD phases: index = 255 * a (RMS of the periodic component)
    amplitude = 0.02
    phase_offsets = torch.tensor([1.0, -1.0, -1.0, 1.0]).view(4, 1, 1, 1) * amplitude
    pattern = pd_up(phase_offsets.expand(4, 3, 32, 32), 2, (64, 64))
    assert checkerboard_index(clean + pattern, clean) == pytest.approx(255 * amplitude, rel=1e-6)
    # a smooth (non-periodic) error of the same size barely registers
    ramp = torch.linspace(-amplitude, amplitude, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    assert checkerboard_index(clean + ramp, clean) < 0.1 * 255 * amplitude
    # the BasicSR metric form agrees on uint8 images
    to_uint8 = lambda x: (x[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()  # noqa: E731
    a, b = to_uint8(clean + pattern), to_uint8(clean)
    expected = checkerboard_index(torch.from_numpy(a).permute(2, 0, 1)[None] / 255.0,
                                  torch.from_numpy(b).permute(2, 0, 1)[None] / 255.0)
    assert calculate_checkerboard(a, b) == pytest.approx(expected)


def test_several_seeds_report_mean_and_sample_spread_per_row(tmp_path):
    """``--seeds 3``: every row is the mean over the seeds with its sample standard deviation and per-seed values."""
    results = ablation.run(['--out', str(tmp_path / 'out'), '--tiny', '--groups', 'identity', '--denoisers', '',
                            '--iters', '2', '--seeds', '3'])
    summary = json.loads((tmp_path / 'out' / 'ablation.json').read_text())
    assert summary['seeds'] == [0, 1, 2]
    for row in results:
        values = row['psnr_per_seed']
        assert len(values) == 3 and abs(row['psnr'] - sum(values) / 3) < 1e-9
        assert abs(row['psnr_std'] - float(np.std(values, ddof=1))) < 1e-9
    assert '±' in (tmp_path / 'out' / 'ablation.md').read_text()
    assert len(set(results[0]['psnr_per_seed'])) == 3  # the seeds really differ (noise, crops, masks, weights)


def test_classical_baselines_never_tune_an_image_on_itself(monkeypatch):
    """Leave-one-out: every validation image's NLM/BM3D parameter is chosen on the other images only; with a single
    validation image there is nothing to tune on and no row."""
    calls = []
    real = ablation.baselines.tune_and_apply

    def spy(name, validation, test, score):
        calls.append((name, [key for key, _, _ in validation], [key for key, _, _ in test]))
        return real(name, validation, test, score)

    monkeypatch.setattr(ablation.baselines, 'tune_and_apply', spy)
    # the leave-one-out property does not depend on the filter: NLM alone keeps this test fast (BM3D is slow)
    monkeypatch.setattr(ablation.baselines, 'FILTERS', {'OpenCV NLM': ablation.baselines.FILTERS['OpenCV NLM']})
    rng = np.random.default_rng(0)
    clean = [rng.uniform(0.2, 0.8, (24, 24, 3)).astype(np.float32) for _ in range(3)]
    val = [(f'v{i}', np.clip(c + rng.normal(0, 0.05, c.shape), 0, 1).astype(np.float32), c)
           for i, c in enumerate(clean)]
    config = ablation.Config()
    results = ablation.classical_baselines(val, config)
    assert set(results) == set(ablation.baselines.FILTERS)
    assert len(calls) == 3 * len(results)
    assert all(test[0] not in tuned and len(tuned) == 2 for _, tuned, test in calls)
    assert all(len(row['parameters']) == 3 and 0 < row['psnr'] < 100 for row in results.values())
    assert ablation.classical_baselines(val[:1], config) is None
