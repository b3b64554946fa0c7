"""Training guards: a non-finite loss stops the run with one line and keeps the last good checkpoint, and weights
that are not finite are never written."""
import types

import pytest
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import checkpoint
from amsnet_basicsr.errors import NonFiniteLossError

from helpers import TINY_NET

from basicsr.archs import build_network


@pytest.mark.slow
def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, noisy_folder, tiny_options,
                                                                          write_options, run_train):
    """The learning rate jumps to 1e30 at iteration 3 (weights ~1e30), so iteration 4's loss overflows to NaN/Inf."""
    options = tiny_options(noisy_folder(4), 'blowup', iters=6, save_freq=2)
    options['train']['scheduler'] = {'type': 'MultiStepRestartLR', 'milestones': [2], 'gamma': 1e33}
    result = run_train(write_options(tmp_path / 'o.yml', options), tmp_path, expect_ok=False)
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert 'error: iteration 4: non-finite loss (l_mask = ' in result.stderr
    assert 'The last complete checkpoint is iteration 2' in result.stderr
    experiment = tmp_path / 'experiments' / 'blowup'
    assert sorted(p.name for p in (experiment / 'models').iterdir()) == ['net_g_2.pth']
    assert sorted(p.name for p in (experiment / 'training_states').iterdir()) == ['2.state']
    params = torch.load(experiment / 'models' / 'net_g_2.pth', map_location='cpu')['params']
    assert all(torch.isfinite(value).all() for value in params.values())


def test_non_finite_weights_are_never_written(tmp_path):
    """The save-time check covers a step whose loss was finite but whose update overflowed the weights."""
    net = build_network(dict(TINY_NET))
    with torch.no_grad():
        next(net.parameters())[0] = float('inf')
    (tmp_path / 'models').mkdir()
    model = types.SimpleNamespace(opt={'rank': 0, 'path': {'models': str(tmp_path / 'models'),
                                                          'training_states': str(tmp_path / 'states')}},
                                  get_bare_model=lambda network: network)
    with pytest.raises(NonFiniteLossError, match=r'iteration 3: net_g \[params\] has non-finite weights'):
        checkpoint.save_network(model, net, 'net_g', 3)
    assert not list((tmp_path / 'models').iterdir())
