"""AMSNetModel wiring: options validation, the two training stages, reproducible testing."""
import pytest
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.config import CHUNK_PIXELS, R3Config, SchemeConfig, TileConfig
from amsnet_basicsr.errors import OptionError
from amsnet_basicsr.models.amsnet_model import AMSNetModel


def model_options(stage='mask', loss=None, amsnet=None, optimizer='AdamW'):
    return {
        'name': 'unit', 'model_type': 'AMSNetModel', 'num_gpu': 0, 'is_train': True, 'dist': False, 'rank': 0,
        'manual_seed': 0,
        'amsnet': amsnet if amsnet is not None else {'train_stride': 4, 'test_stride': 2, 'chunk_size': 4},
        'network_g': {'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': 3, 'act_mode': 'R'},
        'path': {'pretrain_network_g': None},
        'train': {'stage': stage, 'optim_g': {'type': optimizer, 'lr': 1e-3}, 'total_iter': 10,
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [5], 'gamma': 0.5},
                  'pixel_opt': loss or ({'type': 'MaskedL1Loss'} if stage == 'mask' else {'type': 'FinetuneLoss'})},
    }


@pytest.mark.parametrize('stage,log_key', [('mask', 'l_mask'), ('finetune', 'l_total')])
def test_each_stage_trains_the_denoiser_from_noisy_images_only(stage, log_key):
    model = AMSNetModel(model_options(stage))
    assert isinstance(model.optimizer_g, torch.optim.AdamW)
    model.feed_data({'lq': torch.rand(2, 3, 24, 24)})  # no 'gt': training never needs it
    before = [p.detach().clone() for p in model.net_g.parameters()]
    model.optimize_parameters(1)
    assert log_key in model.get_current_log() and model.get_current_log()[log_key] > 0
    assert any(not torch.equal(b, p) for b, p in zip(before, model.net_g.parameters()))


def test_test_is_reproducible_from_the_seed_option():
    noisy = torch.rand(1, 3, 20, 22)
    outputs = []
    for seed in (0, 0, 1):
        options = model_options(amsnet={'test_stride': 2, 'seed': seed, 'r3': {'enabled': True, 'times': 2}})
        options['is_train'] = False
        model = AMSNetModel(options)
        torch.manual_seed(123)  # the same weights for every model
        for parameter in model.net_g.parameters():
            parameter.data.normal_(0, 0.1)
        model.feed_data({'lq': noisy})
        model.test()
        outputs.append(model.output)
    assert outputs[0].shape == noisy.shape
    assert torch.equal(outputs[0], outputs[1]) and not torch.equal(outputs[0], outputs[2])


@pytest.mark.parametrize('amsnet,key', [
    ({'num_branches': 1}, 'amsnet.num_branches'),
    ({'num_branches': 4, 'masks_per_pixel': 4}, 'amsnet.masks_per_pixel'),
    ({'test_stride': 0}, 'amsnet.test_stride'),
    ({'train_stride': 2.5}, 'amsnet.train_stride'),
    ({'chunk_size': 0}, 'amsnet.chunk_size'),
    ({'chunk_size': 'automatic'}, 'amsnet.chunk_size must be auto, null or an integer'),
    ({'r3': {'enabled': True, 'prob': 1.2}}, 'amsnet.r3.prob'),
    ({'r3': {'times': 0}}, 'amsnet.r3.times'),
    ({'r3': {'passes': 3}}, 'amsnet.r3.passes'),
    ({'stride': 2}, 'amsnet.stride'),
])
def test_bad_scheme_options_are_refused_with_the_key(amsnet, key):
    with pytest.raises(OptionError, match=key.replace('.', r'\.')):
        SchemeConfig.from_section(amsnet)


def test_one_set_of_defaults_one_integer_rule_one_meaning_of_null():
    """Defaults are the paper's; integral floats (YAML's ``!!float 5e3``) count as integers everywhere; null means
    "not set": all passes in one batch, the whole image in one tile; ``chunk_size: auto`` (the default) is the
    pixel budget of the device; ``size_multiple: auto`` (the default) is the network's own, so inference settings
    need it resolved first."""
    assert SchemeConfig.from_section(None) == SchemeConfig() == SchemeConfig(
        single_pass=False, train_stride=5, test_stride=2, num_branches=2, masks_per_pixel=1, size_multiple='auto',
        chunk_size='auto', seed=0, r3=R3Config(enabled=False, times=8, prob=0.16),
        tile=TileConfig(size=512, overlap=32, batch=1))
    assert SchemeConfig().chunk_kwargs('cpu') == dict(chunk_size=None, chunk_pixels=CHUNK_PIXELS['cpu'])
    assert SchemeConfig().chunk_kwargs('cuda')['chunk_pixels'] > CHUNK_PIXELS['cpu']
    assert SchemeConfig.from_section({'chunk_size': None}).chunk_kwargs('cuda') == dict(chunk_size=None,
                                                                                       chunk_pixels=None)
    config = SchemeConfig.from_section({'train_stride': 5.0, 'chunk_size': 8.0, 'r3': {'times': 4.0},
                                        'tile': {'size': None}})
    assert (config.train_stride, config.chunk_size, config.r3.times, config.tile.size) == (5, 8, 4, None)
    assert all(type(value) is int for value in (config.train_stride, config.chunk_size, config.r3.times))
    with pytest.raises(ValueError, match='size_multiple is auto'):
        config.inference_kwargs()
    kwargs = config.with_size_multiple(1).inference_kwargs()
    assert kwargs['tile_size'] is None and kwargs['refine_times'] == 0 and kwargs['chunk_size'] == 8
    with pytest.raises(OptionError, match=r'amsnet\.tile: tile size 48'):
        SchemeConfig.from_section({'size_multiple': 8, 'tile': {'size': 48, 'overlap': 32}})
    with pytest.raises(OptionError, match=r'amsnet\.tile\.overlap must be an integer >= 0'):
        SchemeConfig.from_section({'tile': {'overlap': -4}})
    with pytest.raises(OptionError, match=r'amsnet\.seed must be an integer'):
        SchemeConfig.from_section({'seed': True})


def test_the_stage_alone_decides_the_loss():
    """``train.pixel_opt`` may leave out its type, or be absent: ``train.stage`` gives the loss, and the section only
    sets its parameters (an explicit type must be the stage's: below)."""
    model = AMSNetModel(model_options('finetune', loss={'smoothness_weight': 0.1}))
    assert type(model.cri_pix).__name__ == 'FinetuneLoss' and model.cri_pix.smoothness_weight == 0.1
    options = model_options('mask')
    del options['train']['pixel_opt']
    assert type(AMSNetModel(options).cri_pix).__name__ == 'MaskedL1Loss'
    with pytest.raises(OptionError, match='train.pixel_opt must be a mapping'):
        AMSNetModel(model_options('mask', loss='MaskedL1Loss'))


def test_stage_and_loss_must_agree():
    with pytest.raises(ValueError, match='train.stage'):
        AMSNetModel(model_options(stage='pretrain'))
    with pytest.raises(ValueError, match='train.pixel_opt.type must be MaskedL1Loss'):
        AMSNetModel(model_options(stage='mask', loss={'type': 'FinetuneLoss'}))
    with pytest.raises(ValueError, match='train.optim_g.type'):
        AMSNetModel(model_options(optimizer='Lion9000'))
