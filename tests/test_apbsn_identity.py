"""A small, fast version of AMSNet's Table 3: with an unrestricted network (D_AS), AP-BSN's training (PD + plain L1
to the noisy input) drifts toward the identity, while AMSNet's masked training with the same network, data, seed and
number of steps does not. Plus the AP-BSN mode's building blocks (registered APBSNModel, inference without masks,
R^3 shared with the scheme)."""
import numpy as np
import pytest
import torch

import amsnet_basicsr  # noqa: F401
from amsnet_basicsr import camera_noise, scheme
from amsnet_basicsr.archs.dbsn_arch import DBSNl
from amsnet_basicsr.errors import OptionError
from amsnet_basicsr.models.apbsn_model import apbsn_denoise, apbsn_loss, pd_restore
from basicsr.models import build_model

STEPS = 300
NET = {'type': 'DBSNl', 'in_ch': 3, 'out_ch': 3, 'base_ch': 16, 'num_module': 2, 'unrestricted': True,
       'init': 'kaiming'}


def faint_scene(size, seed):
    """A nearly flat scene (grey plus a faint colour gradient): the best denoiser output is almost constant, so
    any loss below the noise floor can only come from copying the noise, and the drift shows within seconds."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    return np.stack([0.45 + 0.05 * np.sin(3 * xx + 2 * yy + p) for p in rng.uniform(0, 6.28, 3)], -1)


def to_tensor(image):
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()


def camera_pair(size, seed):
    """(noisy, clean) with signal-dependent, demosaic-correlated camera noise. Training reads only ``noisy``."""
    noisy, clean = camera_noise.camera_noise_pair(faint_scene(size, seed), seed)
    return to_tensor(noisy), to_tensor(clean)


def noisy_image(size, seed):
    return camera_pair(size, seed)[0]


def options(model_type, stage_loss, network=NET, lr=3e-3):
    train = {'optim_g': {'type': 'AdamW', 'lr': lr, 'weight_decay': 0, 'betas': [0.9, 0.999]},
             'scheduler': {'type': 'MultiStepLR', 'milestones': [10 ** 6], 'gamma': 1.0},
             'total_iter': STEPS, 'warmup_iter': -1, 'pixel_opt': stage_loss}
    if model_type == 'AMSNetModel':
        train['stage'] = 'mask'
    return {'name': 'identity', 'model_type': model_type, 'is_train': True, 'dist': False, 'rank': 0,
            'world_size': 1, 'num_gpu': 0, 'manual_seed': 0, 'scale': 1,
            'amsnet': {'train_stride': 5, 'test_stride': 2, 'num_branches': 2, 'seed': 0},
            'network_g': dict(network), 'path': {'pretrain_network_g': None, 'strict_load_g': True},
            'train': train}


def train_briefly(model_type, loss, training_images, initial_state, crop=80, batch=2):
    """The registered model's own optimize_parameters on random noisy crops (same crops for both schemes)."""
    model = build_model(options(model_type, loss))
    model.net_g.load_state_dict(initial_state)
    rng = np.random.default_rng(0)
    for step in range(1, STEPS + 1):
        crops = []
        for _ in range(batch):
            image = training_images[rng.integers(len(training_images))]
            top, left = rng.integers(image.shape[-1] - crop + 1, size=2)
            crops.append(image[..., top:top + crop, left:left + crop])
        model.feed_data({'lq': torch.cat(crops)})
        model.optimize_parameters(step)
    return model


def psnr(a, b):
    return 10 * torch.log10(1 / (a.clamp(0, 1) - b).pow(2).mean()).item()


def self_sensitivity(restore, noisy, pixels=32, size=24):
    """Mean over random pixels p of (1/3) sum_c d out[c, p] / d in[c, p]: 0 for a blind pipeline, 1 for the identity."""
    x = noisy[..., :size, :size].clone().requires_grad_(True)
    out = restore(x)
    rng = np.random.default_rng(1)
    total = 0.0
    for row, col in rng.integers(size, size=(pixels, 2)):
        grad, = torch.autograd.grad(out[0, :, row, col].sum(), x, retain_graph=True)
        total += grad[0, :, row, col].sum().item() / 3
    return total / pixels


def test_apbsn_with_unrestricted_network_drifts_to_identity_but_amsnet_does_not():
    """Same D_AS initial weights, same noisy crops, same number of steps; the registered models' training steps."""
    pairs = [camera_pair(96, seed) for seed in range(3)]
    training_images = [noisy for noisy, _ in pairs]
    torch.manual_seed(0)
    initial_state = DBSNl(base_ch=16, num_module=2, unrestricted=True, init='kaiming').state_dict()

    apbsn = train_briefly('APBSNModel', {'type': 'L1Loss'}, training_images, initial_state)
    amsnet = train_briefly('AMSNetModel', {'type': 'MaskedL1Loss'}, training_images, initial_state)
    noisy, clean = pairs[0]           # self-supervised: denoise a training image; clean only for the metric
    to_noisy, to_clean = {}, {}
    for name, model in (('apbsn', apbsn), ('amsnet', amsnet)):
        model.feed_data({'lq': noisy})
        model.test()
        to_noisy[name], to_clean[name] = psnr(model.output, noisy), psnr(model.output, clean)
    noisy_psnr = psnr(noisy, clean)
    print(f"noisy {noisy_psnr:.2f} dB; to noisy {to_noisy}; to clean {to_clean}")
    # AP-BSN's output is closer to its noisy input than AMSNet's (same network, data and steps) ...
    assert to_noisy['apbsn'] > to_noisy['amsnet'] + 1.5, (to_noisy, to_clean)
    # ... because it copies its own noisy pixel: the trained pipeline's self-derivative grew from ~0 ...
    untrained = DBSNl(base_ch=16, num_module=2, unrestricted=True, init='kaiming')
    untrained.load_state_dict(initial_state)
    before = self_sensitivity(lambda x: pd_restore(untrained, x, 2), noisy)
    after = self_sensitivity(lambda x: pd_restore(apbsn.net_g, x, 2), noisy)
    print(f"AP-BSN self-derivative: untrained {before:.4f}, trained {after:.4f}")
    assert after > 0.05 and after > 10 * abs(before), (before, after)
    # ... and it denoises less: AMSNet is closer to the clean image, and clearly better than the noisy input.
    assert to_clean['amsnet'] > to_clean['apbsn'] + 1.0, (to_noisy, to_clean)
    assert to_clean['amsnet'] > noisy_psnr + 3.0, (noisy_psnr, to_clean)


def test_apbsn_model_trains_with_plain_l1_and_tests_without_masks():
    """APBSNModel's loss is apbsn_loss (no mask); its inference of an identity network is the noisy input itself."""
    model = build_model(options('APBSNModel', {'type': 'L1Loss'}))
    noisy = noisy_image(40, 1)
    expected = apbsn_loss(model.net_g, noisy, 5).item()
    model.feed_data({'lq': noisy})
    model.optimize_parameters(1)
    assert model.log_dict['l_pix'] == pytest.approx(expected, rel=1e-5)

    identity = torch.nn.Identity()
    generator = torch.Generator().manual_seed(0)
    torch.testing.assert_close(apbsn_denoise(identity, noisy, generator, 2, refine_times=3), noisy)
    torch.testing.assert_close(apbsn_denoise(identity, noisy[..., :37, :39], generator, 2, multiple=4),
                               noisy[..., :37, :39])


def test_apbsn_model_rejects_the_mask_losses():
    with pytest.raises(OptionError, match="L1Loss"):
        build_model(options('APBSNModel', {'type': 'MaskedL1Loss'}))
