"""train.py / test.py as users meet them when something is wrong: exactly one line ``<command>: error: <message>``
(exit 2) or ``<command>: interrupted`` (exit 130) on stderr, never a traceback, never the same error twice.

The fast tests run ``pipelines.run`` in-process, as ``amsnet_basicsr/train.py`` does, with ``sys.argv`` and the
current directory set like a user's shell; the slow tests check the real process.
"""
import logging
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from amsnet_basicsr import pipelines
from amsnet_basicsr.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED

from helpers import REPO, TINY_NET

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
def test_an_error_after_the_logger_started_is_printed_once_and_logged(monkeypatch, tmp_path, capsys, tiny_options,
                                                                      write_options):
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
def test_train_py_prints_a_late_error_once(tmp_path, tiny_options, write_options):
    """The same through a real process: BasicSR's logger writes to the real stderr."""
    folder = tmp_path / 'noisy'
    folder.mkdir()
    (folder / 'empty.png').write_bytes(b'')
    option_file = write_options(tmp_path / 'o.yml', tiny_options(folder, 'nothing', iters=2, save_freq=2))
    result = subprocess.run([sys.executable, str(REPO / 'amsnet_basicsr' / 'train.py'), '-opt', str(option_file)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == EXIT_BAD_INPUT and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert result.stderr.count('no usable training image') == 1, result.stderr[-3000:]


@pytest.mark.slow
def test_train_py_with_zero_usable_images_exits_with_one_line_before_the_first_iteration(
        tmp_path, tiny_options, write_options, run_train):
    folder = tmp_path / 'noisy'
    folder.mkdir()
    (folder / 'empty.png').write_bytes(b'')
    option_file = write_options(tmp_path / 'o.yml', tiny_options(folder, 'nothing', iters=2, save_freq=2))
    result = run_train(option_file, tmp_path, expect_ok=False)
    assert result.returncode == 2, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    assert f'error: datasets.train: no usable training image in {folder}: {folder / "empty.png"}: empty file' \
        in result.stderr
    log = next((tmp_path / 'experiments' / 'nothing').glob('train_*.log')).read_text()
    assert 'Start training' not in log and 'no usable training image' in log


# ------------------------------------------------------------------------------------ 3. test.py options
def test_test_py_without_suffix_names_images_like_basicsr(monkeypatch, tmp_path, capsys, write_options):
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
def test_test_py_refuses_an_option_it_cannot_use_before_writing(monkeypatch, tmp_path, capsys, write_options, case):
    changes, expected = TEST_OPTION_CASES[case]
    option_file = write_options(tmp_path / 't.yml', options_for_test(photos(tmp_path), **changes))
    assert run(monkeypatch, tmp_path, TEST, option_file) == EXIT_BAD_INPUT
    lines = reported(capsys)
    assert len(lines) == 1 and lines[0].startswith(f'{TEST}: error: {expected}'), lines
    assert not (tmp_path / 'results').exists()


@pytest.mark.slow
@pytest.mark.parametrize('case', ['misspelt network', 'missing dataset'])
def test_test_py_reports_bad_options_in_one_line_and_exits_2(tmp_path, write_options, case):
    """test.py runs the same start-up checks as train.py: one line naming the key, exit 2, no results folder."""
    options = {'name': 'checked', 'model_type': 'AMSNetModel', 'num_gpu': 0, 'scale': 1,
               'network_g': dict(TINY_NET), 'path': {'pretrain_network_g': None},
               'datasets': {'test_1': {'name': 'photos', 'type': 'PairedFolderDataset',
                                       'dataroot_lq': str(tmp_path)}},
               'val': {'save_img': True, 'suffix': 'out'}}
    if case == 'misspelt network':
        options['network_g']['type'] = 'DnCNNN'
        expected = "network_g.type: 'DnCNNN' is not a registered denoiser"
    else:
        options['datasets']['test_1']['dataroot_lq'] = str(tmp_path / 'SIDD' / 'missing')
        expected = f'datasets.test_1.dataroot_lq: {tmp_path / "SIDD" / "missing"} does not exist'
    option_file = write_options(tmp_path / 'test.yml', options)
    result = subprocess.run([sys.executable, str(REPO / 'amsnet_basicsr' / 'test.py'), '-opt', str(option_file)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if 'error:' in line or 'Traceback' in line]
    assert lines == [f'amsnet_basicsr/test.py: error: {expected}'] or (
        len(lines) == 1 and lines[0].startswith(f'amsnet_basicsr/test.py: error: {expected}')), result.stderr[-3000:]
    assert not (tmp_path / 'results' / 'checked').exists()


# ------------------------------------------------------------------------------------ 4. Ctrl-C
def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, tmp_path, capsys, noisy_folder, tiny_options, write_options):
    import basicsr.train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(basicsr.train, 'create_train_val_dataloader', interrupted)
    option_file = write_options(tmp_path / 'o.yml', tiny_options(noisy_folder(1), 'stop', 2, 2))
    assert run(monkeypatch, tmp_path, TRAIN, option_file) == EXIT_INTERRUPTED
    assert reported(capsys) == [f'{TRAIN}: interrupted']


# ------------------------------------------------------------------------------------ 5. file system errors
@pytest.mark.parametrize('command', [TRAIN, TEST])
def test_unwritable_output_folder_is_one_line_naming_it(monkeypatch, tmp_path, capsys, noisy_folder, tiny_options,
                                                       write_options, command):
    """Tests run as root, so the folder is made impossible rather than read-only: its parent is a regular file."""
    if command == TRAIN:
        options, parent = tiny_options(noisy_folder(1), 'run', 2, 2), 'experiments'
    else:
        options, parent = options_for_test(photos(tmp_path)), 'results'
    (tmp_path / parent).write_text('a file, not a folder')
    option_file = write_options(tmp_path / 'o.yml', options)
    assert run(monkeypatch, tmp_path, command, option_file) == EXIT_BAD_INPUT
    assert reported(capsys) == [f'{command}: error: {tmp_path / parent / options["name"]}: Not a directory']
