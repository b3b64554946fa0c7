"""The in-process helpers of the research scripts (benchmarks/common.py, with the recipes of
amsnet_basicsr/recipes.py: ablation, checkpoint ranking, data shift): their evaluation is the model's own inference
plus BasicSR's metrics, and on an AMSNetModel the product's AMSNetDenoiser gives the same bytes; their speed probe
times the model's own training step, and the options of the demo's recipe build the model they describe."""
import itertools

import numpy as np
import pytest
import torch
import yaml
from common import denoiser_from_state, evaluate, score_blocks, steps_per_second

from amsnet_basicsr import demo_data, recipes
from amsnet_basicsr.models.amsnet_model import AMSNetModel

from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils import tensor2img

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
    results = evaluate(model, blocks)
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
    plain = evaluate(recipes.in_process_model(options, is_train=False, r3_enabled=False,
                                              state_dict=model.net_g.state_dict()), blocks)
    assert not np.array_equal(plain[0]['denoised'], results[0]['denoised'])


@pytest.mark.parametrize('r3', [False, True])
def test_the_products_denoiser_gives_the_models_bytes(tmp_path, r3):
    """What the ablation and checkpoint ranking switched to: ``AMSNetDenoiser.from_options`` on the options and
    in-memory weights of an AMSNetModel (``denoiser_from_state``) gives, block by block, the same uint8 output, PSNR
    and SSIM as the model's own ``test()`` (``evaluate``), with R^3 off and on; and the ablation's ``score_model``
    (AMSNet rows through AMSNetDenoiser) the numbers of ``evaluate``."""
    import ablation
    options = quick_options(tmp_path)
    blocks = demo_data.test_blocks(seed=0, max_side=48, block=32, limit=2, names=demo_data.TEST_IMAGES[:1])
    torch.manual_seed(1)
    state = recipes.in_process_model(options, is_train=True).net_g.state_dict()
    expected = evaluate(recipes.in_process_model(options, is_train=False, r3_enabled=r3, state_dict=state), blocks)
    denoiser = denoiser_from_state(options, state, overrides={'r3': {'enabled': r3}})
    assert denoiser.scheme.r3.enabled is r3
    for result, reference in zip(score_blocks(denoiser, blocks), expected):
        assert result.keys() == reference.keys() and result['key'] == reference['key']
        for key in ('noisy', 'clean', 'denoised'):
            assert result[key].dtype == np.uint8 and result[key].tobytes() == reference[key].tobytes()
        assert (result['psnr'], result['ssim']) == (reference['psnr'], reference['ssim'])
    config = ablation.Config(test_stride=options['amsnet']['test_stride'])
    images, scores = ablation.score_model(options, state, blocks, config, r3=r3)
    assert [image.tobytes() for image in images] == [result['denoised'].tobytes() for result in expected]
    assert scores['psnr'] == pytest.approx(np.mean([result['psnr'] for result in expected]), rel=1e-12)


def test_speed_probe_times_the_models_own_training_steps(tmp_path, monkeypatch):
    calls = []
    original = AMSNetModel.optimize_parameters

    def counting(self, current_iter):
        calls.append((type(self).__name__, self.lq.shape))
        return original(self, current_iter)

    monkeypatch.setattr(AMSNetModel, 'optimize_parameters', counting)
    options = quick_options(tmp_path)
    (_, photo), = demo_data.training_images(seed=0, max_side=48, names=demo_data.TRAIN_IMAGES[:1])
    crop = recipes.to_tensor(photo[:QUICK['crop'], :QUICK['crop']]).repeat(QUICK['batch'], 1, 1, 1)
    ticks = itertools.count(step=0.25)  # a clock that advances 0.25 s per reading: every step takes 0.25 s
    rate = steps_per_second(recipes.in_process_model(options, is_train=True), crop, clock=lambda: next(ticks))
    assert calls == [('AMSNetModel', (QUICK['batch'], 3, QUICK['crop'], QUICK['crop']))] * 12
    assert rate == 4.0


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
