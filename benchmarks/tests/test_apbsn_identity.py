"""A small version of AMSNet's Table 3: with an unrestricted network (D_AS), AP-BSN's training (PD + plain L1 to
the noisy input) drifts toward the identity, while AMSNet's masked training with the same network, data, seed and
number of steps cannot. Plus the AP-BSN mode's building blocks (registered APBSNModel, inference without masks,
R^3 shared with the scheme).

Spread measured (seed s: noisy images from camera-noise seeds 3s..3s+2, initial weights from torch seed s; the
crops and the mask stream fixed), identical on torch 2.14.1 and 2.9.1 (CPU, one thread):

* 300 steps, seeds 0-5: AP-BSN's self-derivative d out[p] / d in[p] rose from |0.000-0.019| to 0.048-0.751;
  AMSNet's is 0 exactly; AMSNet's output 4.3-10.6 dB above the noisy input. Which of the two ends closer to the
  noisy input after 300 steps depends on the seed (AP-BSN - AMSNet: -1.0 to +5.3 dB), and so does the PSNR gap
  to the clean image (AMSNet - AP-BSN: +0.04 to +11.7 dB): too early for PSNR, not for the self-derivative.
* 1200 steps, seeds 0-4: AP-BSN's self-derivative 0.61-1.01; AP-BSN's output 2.9-14.2 dB closer to the noisy input
  than AMSNet's; AMSNet 8.4-12.8 dB closer to the clean image than AP-BSN and 9.7-12.9 dB above the noisy input,
  AP-BSN within -0.7..+1.2 dB of it.
"""
import numpy as np
import pytest
import torch
from apbsn import DBSNl, apbsn_denoise, apbsn_loss, pd_restore  # registers DBSNl and APBSNModel into BasicSR

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import camera_noise, scheme
from amsnet_basicsr.errors import OptionError
from amsnet_basicsr.masks import PositionalMasks

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


def options(model_type, stage_loss, network=NET, lr=3e-3, steps=STEPS):
    train = {'optim_g': {'type': 'AdamW', 'lr': lr, 'weight_decay': 0, 'betas': [0.9, 0.999]},
             'scheduler': {'type': 'MultiStepLR', 'milestones': [10 ** 6], 'gamma': 1.0},
             'total_iter': steps, 'warmup_iter': -1, 'pixel_opt': stage_loss}
    if model_type == 'AMSNetModel':
        train['stage'] = 'mask'
    return {'name': 'identity', 'model_type': model_type, 'is_train': True, 'dist': False, 'rank': 0,
            'world_size': 1, 'num_gpu': 0, 'manual_seed': 0, 'scale': 1,
            'amsnet': {'train_stride': 5, 'test_stride': 2, 'num_branches': 2, 'seed': 0},
            'network_g': dict(network), 'path': {'pretrain_network_g': None, 'strict_load_g': True},
            'train': train}


def train_briefly(model_type, loss, training_images, initial_state, crop=80, batch=2, steps=STEPS):
    """The registered model's own optimize_parameters on random noisy crops (same crops for both schemes)."""
    model = build_model(options(model_type, loss, steps=steps))
    model.net_g.load_state_dict(initial_state)
    rng = np.random.default_rng(0)
    for step in range(1, steps + 1):
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


def train_both_schemes(seed, steps):
    """AP-BSN and AMSNet from the same D_AS initial weights on the same noisy crops; returns the two models, the
    untrained network and the (noisy, clean) image they are scored on (a training image: self-supervised)."""
    pairs = [camera_pair(96, 3 * seed + index) for index in range(3)]
    training_images = [noisy for noisy, _ in pairs]
    torch.manual_seed(seed)
    untrained = DBSNl(base_ch=16, num_module=2, unrestricted=True, init='kaiming')
    initial_state = untrained.state_dict()
    apbsn = train_briefly('APBSNModel', {'type': 'L1Loss'}, training_images, initial_state, steps=steps)
    amsnet = train_briefly('AMSNetModel', {'type': 'MaskedL1Loss'}, training_images, initial_state, steps=steps)
    return apbsn, amsnet, untrained, pairs[0]


def amsnet_inference(model):
    """The AMSNet model's own inference (MMDB at the test stride) as a differentiable function of its input."""
    config = model.scheme_config
    return lambda x: scheme.denoise(model.net_g, x, PositionalMasks(config.seed), stride=config.test_stride,
                                    num_branches=config.num_branches)


@pytest.mark.slow
@pytest.mark.bench
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_apbsn_learns_to_copy_its_own_pixel_and_amsnet_cannot(seed):
    """The mechanism of the identity mapping, after 300 steps: AP-BSN's pipeline learns to read the very pixel it
    restores (self-derivative from ~0 to >= 0.048 over seeds 0-5), AMSNet's never reads it (exactly 0, whatever
    the weights) and denoises (>= 4.3 dB over the noisy input). Margins: under half the smallest measured value."""
    apbsn, amsnet, untrained, (noisy, clean) = train_both_schemes(seed, STEPS)
    before = self_sensitivity(lambda x: pd_restore(untrained, x, 2), noisy)
    after = self_sensitivity(lambda x: pd_restore(apbsn.net_g, x, 2), noisy)
    amsnet_after = self_sensitivity(amsnet_inference(amsnet), noisy)
    amsnet.feed_data({'lq': noisy})
    amsnet.test()
    gain = psnr(amsnet.output, clean) - psnr(noisy, clean)
    print(f'seed {seed}: AP-BSN self-derivative {before:.4f} -> {after:.4f}; AMSNet {amsnet_after:.2e}, '
          f'gain {gain:.2f} dB')
    assert after > 0.02 and after > abs(before) + 0.02, (before, after)
    assert abs(amsnet_after) < 1e-6, amsnet_after
    assert gain > 2.0, gain


@pytest.mark.slow
@pytest.mark.bench
def test_apbsn_drifts_to_the_noisy_input_and_amsnet_does_not():
    """The outcome of the identity mapping (paper Tab. 3), after 1200 steps (seed 0, ~90 s): AP-BSN's output sits
    at the noisy input, AMSNet's at the clean image. Margins: about half the smallest gap measured over seeds 0-4."""
    apbsn, amsnet, _, (noisy, clean) = train_both_schemes(0, 4 * STEPS)
    to_noisy, to_clean = {}, {}
    for name, model in (('apbsn', apbsn), ('amsnet', amsnet)):
        model.feed_data({'lq': noisy})
        model.test()
        to_noisy[name], to_clean[name] = psnr(model.output, noisy), psnr(model.output, clean)
    noisy_psnr = psnr(noisy, clean)
    print(f'noisy {noisy_psnr:.2f} dB; to noisy {to_noisy}; to clean {to_clean}')
    assert to_noisy['apbsn'] > to_noisy['amsnet'] + 1.5, (to_noisy, to_clean)
    assert to_clean['amsnet'] > to_clean['apbsn'] + 4.0, (to_noisy, to_clean)
    assert to_clean['amsnet'] > noisy_psnr + 5.0, (noisy_psnr, to_clean)
    assert abs(to_clean['apbsn'] - noisy_psnr) < 3.0, (noisy_psnr, to_clean)


def test_apbsn_model_trains_with_plain_l1_and_tests_without_masks():
    """APBSNModel's loss is apbsn_loss (no mask); its inference of an identity network is the noisy input itself."""
    model = build_model(options('APBSNModel', {'type': 'L1Loss'}))
    noisy = noisy_image(40, 1)
    expected = apbsn_loss(model.net_g, noisy, 5).item()
    model.feed_data({'lq': noisy})
    model.optimize_parameters(1)
    assert model.log_dict['l_pix'] == pytest.approx(expected, rel=1e-5)

    identity = torch.nn.Identity()
    masks = PositionalMasks(0)
    torch.testing.assert_close(apbsn_denoise(identity, noisy, masks, stride=2, refine_times=3), noisy)
    torch.testing.assert_close(apbsn_denoise(identity, noisy[..., :37, :39], masks, stride=2, multiple=4),
                               noisy[..., :37, :39])


def test_apbsn_model_rejects_the_mask_losses():
    with pytest.raises(OptionError, match="L1Loss"):
        build_model(options('APBSNModel', {'type': 'MaskedL1Loss'}))
