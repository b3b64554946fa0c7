"""The recipes (amsnet_basicsr/recipes.py): the options of amsnet-denoise --adapt, and the train.py subprocess that
hands its child's one-line error on."""
import copy

import pytest
import torch
import yaml

from amsnet_basicsr import recipes
from amsnet_basicsr.errors import OptionError, SetupError

from basicsr.archs import build_network

NETWORK = {'type': 'MaskAwareDnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 4, 'nb': 2}


def test_adaptation_options_are_the_mask_stage_from_the_checkpoint_in_this_process(tmp_path):
    """What ``denoise.adapted_network`` builds: the denoising options, one process, the photo's seed, the checkpoint
    strictly loaded, and ``steps`` steps of stage mask (L_m) with Adam at a constant rate."""
    weights = tmp_path / 'net.pth'
    torch.save({'params': build_network(dict(NETWORK)).state_dict()}, weights)
    options = {'name': 'x_denoise', 'model_type': 'AMSNetModel', 'num_gpu': 'auto', 'scale': 1,
               'amsnet': {'train_stride': 2, 'test_stride': 2, 'seed': 5}, 'network_g': dict(NETWORK),
               'path': {'pretrain_network_g': 'elsewhere.pth'}}
    before = copy.deepcopy(options)
    opt = recipes.adaptation_options(options, checkpoint=str(weights), param_key='params', steps=3, lr=2e-4, seed=5,
                                     device_type='cpu')
    assert options == before
    assert opt == {
        'name': 'x_denoise', 'model_type': 'AMSNetModel', 'num_gpu': 0, 'scale': 1, 'amsnet': before['amsnet'],
        'network_g': NETWORK, 'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1, 'manual_seed': 5,
        'path': {'pretrain_network_g': str(weights), 'param_key_g': 'params', 'strict_load_g': True},
        'train': {'stage': 'mask', 'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 2e-4},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [4], 'gamma': 1}, 'total_iter': 3,
                  'warmup_iter': -1, 'pixel_opt': {'type': 'MaskedL1Loss'}}}
    assert recipes.adaptation_options(options, checkpoint='w', param_key='params', steps=3, lr=2e-4, seed=5,
                                      device_type='cuda')['num_gpu'] == 1
    model = recipes.in_process_model(opt, is_train=True)
    assert model.stage == 'mask' and model.opt['train']['total_iter'] == 3


@pytest.mark.slow
def test_train_runs_the_train_module_and_hands_on_its_one_line_error(tmp_path):
    """``python -m amsnet_basicsr.train`` in the output folder; an options error the child reports at start-up
    becomes this command's error, naming the log."""
    options = recipes.mask_stage_options(recipes.RECIPES['quick'], {
        'lmdb': str(tmp_path / 'missing.lmdb'),
        'val_folders': {'noisy': str(tmp_path / 'noisy'), 'clean': str(tmp_path / 'clean')}}, seed=0, iters=2)
    path = recipes.write_options(str(tmp_path), options, 'train.yml')
    assert yaml.safe_load(open(path)) == options
    lines = []
    with pytest.raises(SetupError, match=r'^training failed: .*missing\.lmdb.* \(log: .*train_stdout\.log\)$'):
        recipes.train(str(tmp_path), path, lines.append)
    assert lines[0].split(': ', 1)[1].split()[1:4] == ['-m', 'amsnet_basicsr.train', '-opt']


def test_the_folder_students_learn_from_bm3d_and_keep_the_input_block_means(tmp_path):
    """``RECIPES['folder']``: the distill stage's target is BM3D given the measured noise (``classical_teacher``,
    weight 1), and the student's denoise.yml keeps the input's 32-px block means; the quick recipe (tests) has
    neither, so its runs stay seconds long."""
    from amsnet_basicsr.config import SchemeConfig
    from amsnet_basicsr.distill import classical
    teacher = recipes.teacher_options(recipes.RECIPES['folder'], str(tmp_path / 'train.lmdb'), str(tmp_path / 'val'),
                                      iters=10, seed=0)
    data = dict(lmdb=str(tmp_path / 'train.lmdb'), teacher_lmdb=str(tmp_path / 'targets.lmdb'))
    distill = recipes.distill_stage_options(recipes.RECIPES['folder'], data, teacher, 'teacher.pth', seed=0, iters=10)
    assert classical.check_section(distill[classical.SECTION])['weight'] == 1.0
    denoise = recipes.inference_options(distill, 'model.pth')
    assert SchemeConfig.from_options(denoise).low_frequency_anchor == 32
    quick = recipes.distill_stage_options(recipes.RECIPES['quick'], data, teacher, 'teacher.pth', seed=0, iters=10)
    assert classical.SECTION not in quick
    assert SchemeConfig.from_options(recipes.inference_options(quick, 'model.pth')).low_frequency_anchor is None


def test_the_folder_student_s_denoise_yml_subtracts_the_recorded_noise_mean(tmp_path):
    """amsnet-train-folder gives the student's denoise.yml the noise's mean by level that the BM3D teacher recorded
    with its targets (``amsnet.anchor_bias``); a recipe without the anchor or BM3D (quick), or targets recorded
    before the measurement existed, leave the options as they are."""
    import json

    from amsnet_basicsr import train_folder
    from amsnet_basicsr.config import SchemeConfig
    from amsnet_basicsr.distill import TEACHER_INFO, classical
    teacher = recipes.teacher_options(recipes.RECIPES['folder'], str(tmp_path / 'train.lmdb'), str(tmp_path / 'val'),
                                      iters=10, seed=0)
    data = dict(lmdb=str(tmp_path / 'train.lmdb'), teacher_lmdb=str(tmp_path / 'targets.lmdb'))
    targets = tmp_path / 'targets.lmdb'
    targets.mkdir()
    rows = [[0.0625, 0.01, 0.02, 0.03], [0.9375, -0.01, -0.02, -0.03]]
    (targets / TEACHER_INFO).write_text(json.dumps({classical.SECTION: {'noise': {'mean_bias': rows}}}))
    distill = recipes.distill_stage_options(recipes.RECIPES['folder'], data, teacher, 'teacher.pth', seed=0, iters=10)
    logged = []
    with_bias = train_folder.with_anchor_bias(distill, str(targets), logged.append)
    scheme = SchemeConfig.from_options(recipes.inference_options(with_bias, 'model.pth'))
    assert scheme.anchor_bias == tuple(map(tuple, rows)) and scheme.low_frequency_anchor == 32
    assert 'anchor_bias' not in distill['amsnet']  # the training options are not changed
    quick = recipes.distill_stage_options(recipes.RECIPES['quick'], data, teacher, 'teacher.pth', seed=0, iters=10)
    assert train_folder.with_anchor_bias(quick, str(targets), logged.append) is quick and not logged
    (targets / TEACHER_INFO).write_text(json.dumps({classical.SECTION: {'noise': {'transform': []}}}))
    assert train_folder.with_anchor_bias(distill, str(targets), logged.append) is distill
    assert logged and 'records no noise mean' in logged[0]
    with pytest.raises(OptionError, match='is not a teacher-targets LMDB'):
        train_folder.with_anchor_bias(distill, str(tmp_path / 'missing.lmdb'), logged.append)
