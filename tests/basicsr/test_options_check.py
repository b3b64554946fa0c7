"""The start-up checks of option files (amsnet_basicsr/options_check.py): a bad value or a misspelt key is refused
naming the key and what is allowed, an option nothing reads is named in a warning, keys BasicSR sets or reads pass,
and train.py refuses a bad option before it writes anything."""
import pytest
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.errors import OptionError
from amsnet_basicsr.options_check import check_dataset_keys, check_network_options, check_options, read_options_file
from amsnet_basicsr.recipes import single_process_options

from helpers import REPO, TINY_NET

from basicsr.archs import build_network


# ------------------------------------------------------------------------------------ option values
@pytest.fixture
def parsed_options(noisy_folder, tiny_options):
    """``parsed_options(mutate)``: the options of a tiny run on one noisy image as train.py parses them, ``mutate``d."""
    def parse(mutate):
        options = single_process_options(tiny_options(noisy_folder(1), 'bad', iters=2, save_freq=2), is_train=True)
        options['auto_resume'] = False
        for dataset in options['datasets'].values():
            dataset['phase'] = 'train'
        mutate(options)
        return options
    return parse


def _set(path, value):
    def mutate(options):
        node = options
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return mutate


OPTION_CASES = {
    'unknown_denoiser': (_set(['network_g', 'type'], 'NoSuchNet'),
                         ["network_g.type: 'NoSuchNet' is not a registered denoiser", 'Restormer', 'DnCNN', 'UNet']),
    'unknown_denoiser_argument': (_set(['network_g', 'channels'], 3),
                                  ['network_g.channels: not an argument of DnCNN', 'in_nc']),
    'k_below_2': (_set(['amsnet', 'num_branches'], 1), ['amsnet.num_branches (k) must be an integer >= 2, got 1']),
    'mask_ratio': (_set(['amsnet', 'masks_per_pixel'], 2), ['amsnet.masks_per_pixel (m)', '[1, 1]', 'got 2']),
    'r3_probability': (_set(['amsnet', 'r3'], {'enabled': True, 'prob': 1.5}),
                       ['amsnet.r3.prob must be a number in [0, 1], got 1.5']),
    'train_stride': (_set(['amsnet', 'train_stride'], 0), ['amsnet.train_stride must be an integer >= 1, got 0']),
    'test_stride': (_set(['amsnet', 'test_stride'], -2), ['amsnet.test_stride must be an integer >= 1, got -2']),
    'missing_train_path': (_set(['datasets', 'train', 'dataroot_lq'], '/nonexistent/noisy'),
                           ['datasets.train.dataroot_lq: /nonexistent/noisy does not exist']),
    'missing_val_path': (_set(['datasets', 'val'], {'name': 'v', 'type': 'PairedImageDataset', 'phase': 'val',
                                                    'dataroot_gt': '/nonexistent/gt', 'dataroot_lq': '/tmp',
                                                    'io_backend': {'type': 'disk'}}),
                         ['datasets.val.dataroot_gt: /nonexistent/gt does not exist']),
    'missing_pretrained': (_set(['path', 'pretrain_network_g'], '/nonexistent/net.pth'),
                           ['path.pretrain_network_g: /nonexistent/net.pth does not exist']),
    'crop_size': (_set(['datasets', 'train', 'crop_size'], 0), ['datasets.train.crop_size must be an integer >= 1']),
    'stage_loss': (_set(['train', 'pixel_opt', 'type'], 'FinetuneLoss'),
                   ["train.pixel_opt.type must be MaskedL1Loss for train.stage 'mask', got 'FinetuneLoss'"]),
    'optimizer': (_set(['train', 'optim_g', 'type'], 'Adamm'), ["train.optim_g.type: 'Adamm' is not a torch.optim"]),
    'integral_float_total_iter_accepted_but_not_a_fraction': (
        _set(['train', 'total_iter'], 2.5), ['train.total_iter must be an integer >= 1, got 2.5']),
}


def refusal(parsed_options, mutate):
    """The OptionError message check_options gives for the parsed options changed by ``mutate``."""
    with pytest.raises(OptionError) as error:
        check_options(parsed_options(mutate))
    return str(error.value)


@pytest.mark.parametrize('case', sorted(OPTION_CASES))
def test_bad_option_is_refused_naming_the_key_and_allowed_values(parsed_options, case):
    mutate, expected = OPTION_CASES[case]
    message = refusal(parsed_options, mutate)
    for text in expected:
        assert text in message


def test_an_option_nothing_reads_is_named_in_a_warning_and_the_file_still_works(tmp_path, parsed_options):
    """Benchmark dataset sections of older option files carry io_backend, which those datasets never read."""
    options = parsed_options(_set(['datasets', 'val'], {
        'name': 'v', 'type': 'PairedFolderDataset', 'phase': 'val', 'dataroot_lq': str(tmp_path),
        'io_backend': {'type': 'disk'}}))
    with pytest.warns(UserWarning, match='datasets.val.io_backend: PairedFolderDataset reads its files itself'):
        check_options(options)


@pytest.mark.slow
def test_train_py_refuses_a_bad_option_before_writing_anything(tmp_path, noisy_folder, tiny_options, write_options,
                                                                run_train):
    options = tiny_options(noisy_folder(1), 'badopt', iters=2, save_freq=2)
    options['amsnet']['num_branches'] = 1
    result = run_train(write_options(tmp_path / 'o.yml', options), tmp_path, expect_ok=False)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert 'error: amsnet.num_branches (k) must be an integer >= 2, got 1' in result.stderr
    assert not (tmp_path / 'experiments').exists()


def test_building_the_network_to_check_it_leaves_the_seeded_weights_alone():
    torch.manual_seed(0)
    expected = next(build_network(dict(TINY_NET)).parameters()).detach().clone()
    torch.manual_seed(0)
    check_network_options({'network_g': dict(TINY_NET)})
    assert torch.equal(next(build_network(dict(TINY_NET)).parameters()), expected)


# ------------------------------------------------------------------------------------ misspelt dataset keys
def _misspell(phase, key, value):
    def mutate(options):
        options['datasets'][phase][key] = value
    return mutate


def _val_set(dataset_type, **extra):
    def mutate(options):
        folder = options['datasets']['train']['dataroot_lq']
        options['datasets']['val'] = {'name': 'v', 'type': dataset_type, 'phase': 'val', 'dataroot_lq': folder,
                                      'io_backend': {'type': 'disk'}, **extra}
    return mutate


MISSPELT = {
    'use_hflp': (_misspell('train', 'use_hflp', False),
                 'datasets.train.use_hflp: not an option of NoisyImageDataset; did you mean use_hflip?'),
    'dataroot_lqq': (_misspell('train', 'dataroot_lqq', '/elsewhere'),
                     'datasets.train.dataroot_lqq: not an option of NoisyImageDataset; did you mean dataroot_lq?'),
    'mean_is_not_read_by_noisy_images': (_misspell('train', 'mean', [0.5, 0.5, 0.5]),
                                         'datasets.train.mean: not an option of NoisyImageDataset; allowed: '),
    'paired_image_dataset': (_val_set('PairedImageDataset', dataroot_gt='/tmp', filename_tmp='{}'),
                             'datasets.val.filename_tmp: not an option of PairedImageDataset; did you mean '
                             'filename_tmpl?'),
    'single_image_dataset': (_val_set('SingleImageDataset', colour='y'),
                             'datasets.val.colour: not an option of SingleImageDataset; did you mean color?'),
    'paired_folder_dataset': (_val_set('PairedFolderDataset', gt_sufix='_mean'),
                              'datasets.val.gt_sufix: not an option of PairedFolderDataset; did you mean gt_suffix?'),
}


@pytest.mark.parametrize('case', sorted(MISSPELT))
def test_misspelt_dataset_key_is_refused_with_the_close_match(parsed_options, case):
    mutate, expected = MISSPELT[case]
    message = refusal(parsed_options, mutate)
    assert message.startswith(expected), message


def test_keys_basicsr_sets_or_reads_are_accepted(tmp_path, parsed_options):
    options = parsed_options(_val_set(
        'PairedImageDataset', dataroot_gt=str(tmp_path), filename_tmpl='{}', meta_info_file=None, gt_size=24,
        use_hflip=False, use_rot=False, color=None, mean=None, std=None, scale=1))
    options['datasets']['train'].update(scale=1, pin_memory=False, persistent_workers=False, num_prefetch_queue=1,
                                        meta_info_file=None, bad_images='skip')
    check_options(options)


@pytest.mark.parametrize('option_file', sorted((REPO / 'options').glob('*.yml')), ids=lambda path: path.name)
def test_every_shipped_dataset_section_passes_the_key_check(option_file):
    for phase, dataset in read_options_file(option_file)['datasets'].items():
        check_dataset_keys(f'datasets.{phase}', {**dataset, 'phase': phase.split('_')[0], 'scale': 1})
