"""The clean-free validation metric ``masked_holdout``: L_m (Eq. 4) of the single-mask forward (Eq. 2-3) on noisy
validation images with fixed, seeded masks, through BasicSR's own validation loop (AMSNetModel + ValidationMixin)."""
import builtins
import logging

import cv2
import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.errors import OptionError
from amsnet_basicsr.models.amsnet_model import AMSNetModel
from amsnet_basicsr.scheme import mask_loss, masked_training_forward

from helpers import smooth_scene

from basicsr.data import build_dataset
from basicsr.metrics import calculate_metric

TINY_NET = {'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': 3, 'act_mode': 'R'}
PSNR = {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}


class NeighbourMean(torch.nn.Module):
    """A smoothing filter that ignores zeroed (masked) pixels: the mean of the non-zero pixels of each 3x3 window."""

    def forward(self, x):
        valid = (x.abs().sum(1, keepdim=True) > 0).to(x.dtype)
        total = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode='replicate'), 3, stride=1)
        count = F.avg_pool2d(F.pad(valid, (1, 1, 1, 1), mode='replicate'), 3, stride=1)
        return total / count.clamp_min(1e-6)


class ZeroMap(torch.nn.Module):
    """The worst 'denoiser': zero everywhere (the loss is then the mean intensity of the masked noisy pixels)."""

    def forward(self, x):
        return torch.zeros_like(x)


def model_options(tmp_path, metrics):
    return {
        'name': 'tiny', 'model_type': 'AMSNetModel', 'num_gpu': 0, 'is_train': False, 'dist': False, 'rank': 0,
        'world_size': 1, 'amsnet': {'train_stride': 2, 'test_stride': 2, 'num_branches': 2, 'seed': 3},
        'network_g': dict(TINY_NET),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'results_root': str(tmp_path / 'results'),
                 'visualization': str(tmp_path / 'results' / 'visualization')},
        'val': {'save_img': False, 'suffix': None, 'metrics': metrics},
    }


def noisy_only(folders, name='noisy_only'):
    return DataLoader(build_dataset({'name': name, 'type': 'SingleImageDataset', 'phase': 'val',
                                     'dataroot_lq': str(folders['val_noisy']), 'io_backend': {'type': 'disk'}}))


def paired(folders, name='paired'):
    return DataLoader(build_dataset({'name': name, 'type': 'PairedImageDataset', 'phase': 'val', 'scale': 1,
                                     'dataroot_gt': str(folders['val_clean']),
                                     'dataroot_lq': str(folders['val_noisy']), 'filename_tmpl': '{}',
                                     'io_backend': {'type': 'disk'}}))


def validate(model, loader, current_iter=1):
    model.validation(loader, current_iter=current_iter, tb_logger=None, save_img=False)
    return dict(model.metric_results)


def test_masked_holdout_is_the_seeded_masked_loss_and_deterministic(tmp_path):
    model = AMSNetModel(model_options(tmp_path, None))
    model.net_g.train()
    noisy = torch.rand(2, 3, 20, 18, generator=torch.Generator().manual_seed(0))
    first, second = model.masked_holdout_loss(noisy), model.masked_holdout_loss(noisy)
    assert first == second and first > 0
    with torch.no_grad():  # by definition: L_m (Eq. 4) of the training forward with the mask of amsnet.seed
        prediction, masked = masked_training_forward(model.net_g, noisy, 2, torch.Generator().manual_seed(3),
                                                     num_branches=2)
        assert first == pytest.approx(mask_loss(prediction, noisy, masked).item(), rel=1e-6)
    assert model.net_g.training  # evaluated in eval mode, the training mode restored


def test_validation_logs_masked_holdout_deterministically_without_reading_clean_files(tmp_path, image_folders,
                                                                                      monkeypatch, caplog):
    """A noisy-only set with `psnr` listed: psnr is dropped, masked_holdout is computed (and logged) instead; the
    same value twice; not one clean file is opened; the same value as on the paired set (GT plays no part)."""
    model = AMSNetModel(model_options(tmp_path, {'psnr': dict(PSNR)}))
    opened = []
    real_open, real_imread = builtins.open, cv2.imread

    def spy_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def spy_imread(file, *args, **kwargs):
        opened.append(str(file))
        return real_imread(file, *args, **kwargs)
    monkeypatch.setattr(builtins, 'open', spy_open)
    monkeypatch.setattr(cv2, 'imread', spy_imread)
    with caplog.at_level(logging.INFO, logger='basicsr'):
        first = validate(model, noisy_only(image_folders))
        second = validate(model, noisy_only(image_folders), current_iter=2)
    monkeypatch.undo()
    assert any(str(image_folders['val_noisy']) in path for path in opened)  # the spy sees the reads
    assert not [path for path in opened if str(image_folders['val_clean']) in path]
    assert set(first) == {'masked_holdout'} and first == second and first['masked_holdout'] > 0
    assert 'noisy_only has no reference images: metrics skipped for it. Validating it by masked_holdout' in caplog.text
    assert '# masked_holdout:' in caplog.text
    assert model.opt['val']['metrics'] == {'psnr': PSNR}  # the options are left as they were

    both = validate(model, paired(image_folders),)  # a paired set keeps psnr; masked_holdout only when listed
    assert set(both) == {'psnr'}
    model.opt['val']['metrics'] = {'psnr': dict(PSNR), 'holdout': {'type': 'masked_holdout'}}
    both = validate(model, paired(image_folders, 'paired_2'))
    assert set(both) == {'psnr', 'holdout'} and both['holdout'] == first['masked_holdout']
    assert model.best_metric_results['paired_2']['holdout']['better'] == 'lower'


def test_masked_holdout_prefers_a_denoiser_to_the_zero_map(tmp_path):
    """Synthetic smooth scene + white noise: the masked pixels are predicted far better by the mean of their
    unmasked neighbours than by zeros, and the metric says so."""
    rng = np.random.default_rng(0)
    clean = smooth_scene(64, 64, rng)
    noisy = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)
    noisy = torch.from_numpy(noisy).permute(2, 0, 1)[None]
    model = AMSNetModel(model_options(tmp_path, None))
    model.net_g = NeighbourMean()
    good = model.masked_holdout_loss(noisy)
    model.net_g = ZeroMap()
    bad = model.masked_holdout_loss(noisy)
    assert good < 0.1 < 0.3 < bad  # ~noise level vs ~the mean intensity
    clean_error = (torch.from_numpy(clean).permute(2, 0, 1)[None] - noisy).abs().mean().item()
    assert good > clean_error * 0.5  # it is measured against the noisy image: the noise stays in the loss


def test_better_lower_in_basicsr_best_metric_tracking(tmp_path, image_folders):
    """BasicSR's best-metric tracking keeps the LOWEST masked_holdout (`better: lower` is filled in), over the
    iterations of a training run; `better: higher` is refused."""
    model = AMSNetModel(model_options(tmp_path, {'holdout': {'type': 'masked_holdout'}}))
    values = {}
    for current_iter, net in ((1, ZeroMap()), (2, NeighbourMean()), (3, ZeroMap())):
        model.net_g = net
        values[current_iter] = validate(model, noisy_only(image_folders), current_iter)['holdout']
    assert values[2] < values[1] == values[3]
    best = model.best_metric_results['noisy_only']['holdout']
    assert best == {'better': 'lower', 'val': values[2], 'iter': 2}
    assert 'better' not in model.opt['val']['metrics']['holdout']  # filled in for BasicSR, options untouched

    model.opt['val']['metrics'] = {'holdout': {'type': 'masked_holdout', 'better': 'higher'}}
    with pytest.raises(OptionError, match="better must be 'lower'"):
        validate(model, noisy_only(image_folders, 'other'))
    with pytest.raises(OptionError, match='validation of AMSNetModel'):
        calculate_metric({'img': np.zeros((4, 4, 3), np.uint8)}, {'type': 'masked_holdout'})
