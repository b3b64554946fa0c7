"""train.py and test.py end to end as subprocesses, and every shipped option file."""

import pytest
import torch
import yaml

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.options_check import STAGE_LOSSES, check_model_options

from helpers import REPO

from basicsr.archs import build_network
from basicsr.utils.options import ordered_yaml

TINY_NET = {'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': 3, 'act_mode': 'R'}
METRICS = {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
           'ssim': {'type': 'calculate_ssim', 'crop_border': 0, 'test_y_channel': False}}


def paired_set(folders, name='tiny_val'):
    return {'name': name, 'type': 'PairedImageDataset', 'dataroot_gt': str(folders['val_clean']),
            'dataroot_lq': str(folders['val_noisy']), 'io_backend': {'type': 'disk'}}


def train_options(folders, name, stage, iters, pretrain=None):
    return {
        'name': name, 'model_type': 'AMSNetModel', 'num_gpu': 0, 'manual_seed': 0, 'scale': 1,
        'amsnet': {'train_stride': 5, 'test_stride': 2, 'num_branches': 2, 'chunk_size': 4, 'seed': 0},
        'datasets': {
            'train': {'name': 'tiny_noisy', 'type': 'NoisyImageDataset', 'dataroot_lq': str(folders['noisy']),
                      'io_backend': {'type': 'disk'}, 'crop_size': 40, 'use_hflip': True, 'use_rot': True,
                      'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2, 'dataset_enlarge_ratio': 1},
            'val': paired_set(folders)},
        'network_g': TINY_NET,
        'path': {'pretrain_network_g': pretrain, 'strict_load_g': True, 'resume_state': None},
        'train': {'stage': stage, 'optim_g': {'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 0, 'betas': [0.9, 0.999]},
                  'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [iters], 'restart_weights': [1],
                                'eta_min': 1e-6},
                  'total_iter': iters, 'warmup_iter': -1,
                  'pixel_opt': ({'type': 'MaskedL1Loss'} if stage == 'mask' else
                                {'type': 'FinetuneLoss', 'smoothness_weight': 0.01})},
        'val': {'val_freq': iters, 'save_img': False, 'metrics': METRICS},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': iters, 'use_tb_logger': False},
    }


@pytest.mark.slow
def test_train_finetune_test_end_to_end(tmp_path, image_folders, write_options, run_entry_point):
    run_entry_point('train.py', write_options(tmp_path / 'b.yml', train_options(image_folders, 'tiny_B', 'mask', 4)),
                    tmp_path)
    b_model = tmp_path / 'experiments' / 'tiny_B' / 'models' / 'net_g_latest.pth'
    assert b_model.is_file()
    log_b = next((tmp_path / 'experiments' / 'tiny_B').glob('train_tiny_B_*.log')).read_text()
    assert 'l_mask:' in log_b and '# psnr:' in log_b

    run_entry_point('train.py', write_options(
        tmp_path / 'p.yml', train_options(image_folders, 'tiny_P', 'finetune', 2, pretrain=str(b_model))), tmp_path)
    p_model = tmp_path / 'experiments' / 'tiny_P' / 'models' / 'net_g_latest.pth'
    log_p = next((tmp_path / 'experiments' / 'tiny_P').glob('train_tiny_P_*.log')).read_text()
    assert 'l_total:' in log_p and f'Loading DnCNN model from {b_model}' in log_p
    b_params = torch.load(b_model, map_location='cpu')['params']
    p_params = torch.load(p_model, map_location='cpu')['params']
    assert any(not torch.equal(b_params[key], p_params[key]) for key in b_params), 'fine-tune did not update D_E'

    test_options = {
        'name': 'tiny_test', 'model_type': 'AMSNetModel', 'num_gpu': 0, 'scale': 1,
        'amsnet': {'test_stride': 2, 'num_branches': 2, 'chunk_size': 3, 'seed': 0,
                   'r3': {'enabled': True, 'times': 2, 'prob': 0.16}},
        'datasets': {'test_1': paired_set(image_folders),
                     'test_2': {'name': 'noisy_only', 'type': 'SingleImageDataset',
                                'dataroot_lq': str(image_folders['val_noisy']), 'io_backend': {'type': 'disk'}}},
        'network_g': TINY_NET,
        'path': {'pretrain_network_g': str(p_model), 'strict_load_g': True},
        'val': {'save_img': True, 'suffix': 'amsnet', 'metrics': METRICS},
    }
    run_entry_point('test.py', write_options(tmp_path / 't.yml', test_options), tmp_path)
    for dataset in ('tiny_val', 'noisy_only'):  # metrics where GT exists, images for both
        saved = sorted(p.name for p in (tmp_path / 'results' / 'tiny_test' / 'visualization' / dataset).iterdir())
        assert saved == ['val_0_amsnet.png', 'val_1_amsnet.png']
    log_t = next((tmp_path / 'results' / 'tiny_test').glob('test_tiny_test_*.log')).read_text()
    assert '# psnr:' in log_t and '# ssim:' in log_t
    assert 'noisy_only has no reference images: metrics skipped for it.' in log_t


@pytest.mark.parametrize('option_file', sorted((REPO / 'options').glob('*.yml')), ids=lambda path: path.name)
def test_every_option_file_passes_the_start_up_checks_and_builds_its_network(option_file):
    """The checks train.py/test.py run at start-up (amsnet section, network_g arguments, train stage/loss/optimiser/
    scheduler for training files), on every shipped file; then the network builds."""
    options = dict(yaml.load(option_file.read_text(), Loader=ordered_yaml()[0]))
    options['is_train'] = option_file.name.startswith(('train_', 'finetune_', 'distill_'))
    check_model_options(options, STAGE_LOSSES)
    network = build_network(dict(options['network_g']))
    assert isinstance(network, torch.nn.Module) and sum(p.numel() for p in network.parameters()) > 0


@pytest.mark.parametrize('option_file', sorted((REPO / 'options').glob('train_AMSNet_*.yml')),
                         ids=lambda path: path.name)
def test_shipped_schedule_is_cosine_annealing_with_warm_restarts(option_file):
    """Supplement Sec. 1.3: AdamW at 1e-4, cosine annealing with warm restarts; the files restart every 100 k."""
    from basicsr.models.lr_scheduler import CosineAnnealingRestartLR
    train = yaml.load(option_file.read_text(), Loader=ordered_yaml()[0])['train']
    scheduler_options = dict(train['scheduler'])
    assert scheduler_options.pop('type') == 'CosineAnnealingRestartLR' and train['optim_g']['lr'] == 1e-4
    optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=train['optim_g']['lr'])
    scheduler = CosineAnnealingRestartLR(optimizer, **scheduler_options)

    def rate(iteration):
        scheduler.last_epoch = iteration
        return scheduler.get_lr()[0]

    assert sum(scheduler_options['periods']) == train['total_iter'] == 400000
    assert rate(0) == pytest.approx(1e-4) and rate(50000) == pytest.approx(0.5e-4 + 0.5e-7, rel=1e-3)
    assert rate(100000) < 1e-6 and rate(100001) == pytest.approx(1e-4, rel=1e-6)  # a restart after every 100 k
    assert rate(350000) == pytest.approx(rate(50000))
