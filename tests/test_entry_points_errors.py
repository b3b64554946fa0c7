"""train.py / test.py as users meet them when something is wrong: exactly one line ``<command>: error: <message>``
(exit 2) or ``<command>: interrupted`` (exit 130) on stderr, never a traceback, never the same error twice.

The fast tests run ``pipelines.run`` in-process, as ``amsnet_basicsr/train.py`` does, with ``sys.argv`` and the
current directory set like a user's shell; one slow test checks the real process.
"""
import logging
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from amsnet_basicsr import pipelines
from amsnet_basicsr.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, OptionError
from amsnet_basicsr.options_check import (check_dataset_keys, check_network_options, check_options,
                                          read_options_file)

from conftest import REPO, write_options
from test_bad_input import parsed_options
from test_distributed import TINY_NET, noisy_folder, tiny_options

TRAIN = 'amsnet_basicsr/train.py'
TEST = 'amsnet_basicsr/test.py'


@pytest.fixture(autouse=True)
def fresh_logger():
    """BasicSR's 'basicsr' logger is set up once per process; reset it so that this run's stream handler writes to
    this test's captured stderr (as in a real process) and close the run's handlers afterwards."""
    from basicsr.utils import logger as basicsr_logger

    def reset():
        logger = logging.getLogger('basicsr')
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        basicsr_logger.initialized_logger.pop('basicsr', None)

    reset()
    yield
    reset()


def run(monkeypatch, tmp_path, command, option_file):
    """``python <command> -opt <option_file>`` in ``tmp_path``, in this process; the exit status."""
    from basicsr.test import test_pipeline
    from basicsr.train import train_pipeline
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', [command, '-opt', str(option_file)])
    try:
        return pipelines.run(train_pipeline if command == TRAIN else test_pipeline, command)
    except KeyboardInterrupt:
        pytest.fail('Ctrl-C escaped the pipeline')  # not re-raised: it would stop the whole test session


def reported(capsys):
    """The lines of stderr that report an outcome (BasicSR's own log lines are there too)."""
    return [line for line in capsys.readouterr().err.splitlines()
            if 'error' in line.lower() or 'Traceback' in line or 'interrupted' in line]


def photos(tmp_path, count=2, size=32):
    folder = tmp_path / 'photos'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        cv2.imwrite(str(folder / f'p{index}.png'), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return folder


def options_for_test(folder, **changes):
    return {'name': 'checked', 'model_type': 'AMSNetModel', 'num_gpu': 0, 'scale': 1,
            'amsnet': {'test_stride': 2, 'num_branches': 2, 'seed': 0}, 'network_g': dict(TINY_NET),
            'path': {'pretrain_network_g': None},
            'datasets': {'test_1': {'name': 'photos', 'type': 'PairedFolderDataset', 'dataroot_lq': str(folder)}},
            'val': {'save_img': True, 'suffix': 'out'}, **changes}


# ------------------------------------------------------------------------------------ 1. the options file
OPTION_FILES = {
    'missing': (None, 'No such file or directory'),
    'malformed': ('name: x\nnetwork_g: [DnCNN\n', 'while parsing a flow sequence'),
    'not_a_mapping': ('- name\n- x\n', 'is not a mapping of options'),
    'no_path_section': (yaml.safe_dump({'name': 'x', 'num_gpu': 0, 'datasets': {}}), 'path is required'),
    'empty_dataset': (yaml.safe_dump({'name': 'x', 'num_gpu': 0, 'datasets': {'train': None}, 'path': {}}),
                      'datasets.train must be a mapping'),
}


@pytest.mark.parametrize('case', sorted(OPTION_FILES))
def test_unusable_options_file_is_one_line_naming_it(monkeypatch, tmp_path, capsys, case):
    content, reason = OPTION_FILES[case]
    option_file = tmp_path / 'o.yml'
    if content is not None:
        option_file.write_text(content)
    assert run(monkeypatch, tmp_path, TRAIN, option_file) == EXIT_BAD_INPUT
    lines = reported(capsys)
    assert len(lines) == 1 and lines[0].startswith(f'{TRAIN}: error: ') and reason in lines[0], lines
    assert str(option_file) in lines[0]
    assert not (tmp_path / 'experiments').exists()


# ------------------------------------------------------------------------------------ 2. the error printed once
def test_an_error_after_the_logger_started_is_printed_once_and_logged(monkeypatch, tmp_path, capsys):
    folder = tmp_path / 'noisy'
    folder.mkdir()
    (folder / 'empty.png').write_bytes(b'')
    option_file = write_options(tmp_path / 'o.yml', tiny_options(folder, 'nothing', iters=2, save_freq=2))
    assert run(monkeypatch, tmp_path, TRAIN, option_file) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert 'INFO: ' in err  # BasicSR's logger writes to this stderr, as in a process
    assert err.count('no usable training image') == 1, err[-3000:]
    assert f'{TRAIN}: error: datasets.train: no usable training image in {folder}' in err
    log = next((tmp_path / 'experiments' / 'nothing').glob('train_*.log')).read_text()
    assert 'ERROR: datasets.train: no usable training image' in log


@pytest.mark.slow
def test_train_py_prints_a_late_error_once(tmp_path):
    """The same through a real process: BasicSR's logger writes to the real stderr."""
    folder = tmp_path / 'noisy'
    folder.mkdir()
    (folder / 'empty.png').write_bytes(b'')
    option_file = write_options(tmp_path / 'o.yml', tiny_options(folder, 'nothing', iters=2, save_freq=2))
    result = subprocess.run([sys.executable, str(REPO / 'amsnet_basicsr' / 'train.py'), '-opt', str(option_file)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == EXIT_BAD_INPUT and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert result.stderr.count('no usable training image') == 1, result.stderr[-3000:]


# ------------------------------------------------------------------------------------ 3. test.py options
def test_test_py_without_suffix_names_images_like_basicsr(monkeypatch, tmp_path, capsys):
    """BasicSR names saved test images ``<image>_<name>.png`` when ``val.suffix`` is ~; a missing suffix is that."""
    option_file = write_options(tmp_path / 't.yml', options_for_test(photos(tmp_path), val={'save_img': True}))
    assert run(monkeypatch, tmp_path, TEST, option_file) == 0, capsys.readouterr().err[-3000:]
    saved = tmp_path / 'results' / 'checked' / 'visualization' / 'photos'
    assert sorted(path.name for path in saved.iterdir()) == ['p0_checked.png', 'p1_checked.png']


TEST_OPTION_CASES = {
    'constructor_refuses_a_value': (
        {'network_g': {'type': 'MaskAwareDnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': -1}},
        'network_g: MaskAwareDnCNN cannot be built from its arguments: MaskAwareDnCNN: nb (conv layers) must be >= 2, '
        'got -1'),
    'negative_width': ({'network_g': {**TINY_NET, 'nc': -1}},
                       'network_g: DnCNN cannot be built from its arguments: '),  # then torch's own words
    'no_save_img': ({'val': {'suffix': 'out'}}, 'val.save_img must be true or false, got None'),
}


@pytest.mark.parametrize('case', sorted(TEST_OPTION_CASES))
def test_test_py_refuses_an_option_it_cannot_use_before_writing(monkeypatch, tmp_path, capsys, case):
    changes, expected = TEST_OPTION_CASES[case]
    option_file = write_options(tmp_path / 't.yml', options_for_test(photos(tmp_path), **changes))
    assert run(monkeypatch, tmp_path, TEST, option_file) == EXIT_BAD_INPUT
    lines = reported(capsys)
    assert len(lines) == 1 and lines[0].startswith(f'{TEST}: error: {expected}'), lines
    assert not (tmp_path / 'results').exists()


def test_building_the_network_to_check_it_leaves_the_seeded_weights_alone():
    import torch
    from basicsr.archs import build_network
    torch.manual_seed(0)
    expected = next(build_network(dict(TINY_NET)).parameters()).detach().clone()
    torch.manual_seed(0)
    check_network_options({'network_g': dict(TINY_NET)})
    assert torch.equal(next(build_network(dict(TINY_NET)).parameters()), expected)


# ------------------------------------------------------------------------------------ 4. misspelt dataset keys
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
def test_misspelt_dataset_key_is_refused_with_the_close_match(tmp_path, case):
    mutate, expected = MISSPELT[case]
    options = parsed_options(tmp_path, noisy_folder(tmp_path, 1), mutate)
    with pytest.raises(OptionError) as error:
        check_options(options)
    assert str(error.value).startswith(expected), str(error.value)


def test_keys_basicsr_sets_or_reads_are_accepted(tmp_path):
    options = parsed_options(tmp_path, noisy_folder(tmp_path, 1), _val_set(
        'PairedImageDataset', dataroot_gt=str(tmp_path), filename_tmpl='{}', meta_info_file=None, gt_size=24,
        use_hflip=False, use_rot=False, color=None, mean=None, std=None, scale=1))
    options['datasets']['train'].update(scale=1, pin_memory=False, persistent_workers=False, num_prefetch_queue=1,
                                        meta_info_file=None, bad_images='skip')
    check_options(options)


@pytest.mark.parametrize('option_file', sorted((REPO / 'options').glob('*.yml')), ids=lambda path: path.name)
def test_every_shipped_dataset_section_passes_the_key_check(option_file):
    for phase, dataset in read_options_file(option_file)['datasets'].items():
        check_dataset_keys(f'datasets.{phase}', {**dataset, 'phase': phase.split('_')[0], 'scale': 1})


# ------------------------------------------------------------------------------------ 5. Ctrl-C
def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, tmp_path, capsys):
    import basicsr.train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(basicsr.train, 'create_train_val_dataloader', interrupted)
    option_file = write_options(tmp_path / 'o.yml', tiny_options(noisy_folder(tmp_path, 1), 'stop', 2, 2))
    assert run(monkeypatch, tmp_path, TRAIN, option_file) == EXIT_INTERRUPTED
    assert reported(capsys) == [f'{TRAIN}: interrupted']


# ------------------------------------------------------------------------------------ 6. file system errors
@pytest.mark.parametrize('command', [TRAIN, TEST])
def test_unwritable_output_folder_is_one_line_naming_it(monkeypatch, tmp_path, capsys, command):
    """Tests run as root, so the folder is made impossible rather than read-only: its parent is a regular file."""
    if command == TRAIN:
        options, parent = tiny_options(noisy_folder(tmp_path, 1), 'run', 2, 2), 'experiments'
    else:
        options, parent = options_for_test(photos(tmp_path)), 'results'
    (tmp_path / parent).write_text('a file, not a folder')
    option_file = write_options(tmp_path / 'o.yml', options)
    assert run(monkeypatch, tmp_path, command, option_file) == EXIT_BAD_INPUT
    assert reported(capsys) == [f'{command}: error: {tmp_path / parent / options["name"]}: Not a directory']
