"""amsnet-train-folder under hostile use: it never deletes or overwrites a file it did not write, refuses a --resume
it cannot honour, keeps every photo (distinct tile keys, 16-bit precision) and keeps two runs out of one folder.

Training is the ``stand_in_trainer`` fixture (the untrained network saved as the checkpoint): no process,
milliseconds."""
import contextlib
import fcntl
import os

import cv2
import lmdb
import numpy as np
import pytest
import yaml

from amsnet_basicsr import output_folder, train_folder
from amsnet_basicsr.errors import EXIT_BAD_INPUT, CheckpointError, SetupError


def run(photos, out, *flags, log=None):
    args = train_folder.parse_args([str(photos), '--out', str(out), '--quick', '--train-tile', '64', '--student-iters',
                                    '0', '--quiet', *flags])
    return train_folder.run(args, log or (lambda message: None))


def snapshot(root):
    """{relative path: bytes} of every file under ``root``."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, 'rb') as handle:
                found[os.path.relpath(path, root)] = handle.read()
    return found


@pytest.fixture
def photos(tmp_path, write_noisy_photo):
    folder = tmp_path / 'photos'
    rng = np.random.default_rng(0)
    for index in range(2):
        write_noisy_photo(folder / f'img_{index}.png', 140, 150, rng)
    return folder


def test_out_equal_to_inside_or_around_the_photos_is_refused_before_anything_is_written(tmp_path, photos):
    before = snapshot(tmp_path)
    for out in (photos, photos / 'model', tmp_path):
        for flags in ((), ('--resume',), ('--force',)):
            with pytest.raises(SetupError, match='outside the photo folder'):
                run(photos, out, *flags)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize('flag', ['--resume', '--force', None])
def test_a_folder_this_command_did_not_write_is_never_touched(tmp_path, photos, stand_in_trainer, flag):
    out = tmp_path / 'mine'
    (out / 'data').mkdir(parents=True)
    (out / 'data' / 'notes.txt').write_text('user data')
    (out / 'model.pth').write_text('my own file')
    before = snapshot(out)
    with pytest.raises(SetupError, match='holds no amsnet-train-folder run'):
        run(photos, out, *([flag] if flag else []))
    assert snapshot(out) == before and sorted(os.listdir(out)) == ['data', 'model.pth']  # no record, no lock


def test_failed_run_then_force_deletes_only_what_the_run_wrote(tmp_path, stand_in_trainer, write_noisy_photo):
    """The old sequence `P --out P --resume` then `P --out P --force` deleted P; here a first run fails inside its own
    folder (no usable photo), the user adds a file beside it, and --force removes only the run's own entries."""
    photos = tmp_path / 'photos'
    photos.mkdir()
    (photos / 'broken.png').write_bytes(b'not an image')
    out = tmp_path / 'run'
    with pytest.raises(Exception, match='no usable photos'):
        run(photos, out)
    (out / 'keep.txt').write_text('user data')
    write_noisy_photo(photos / 'good.png', 140, 150, np.random.default_rng(1))
    photos_before = snapshot(photos)
    run(photos, out, '--force')
    assert (out / 'keep.txt').read_text() == 'user data' and snapshot(photos) == photos_before
    assert (out / 'denoise.yml').is_file()


def test_force_on_a_finished_run_keeps_files_the_user_put_beside_it(tmp_path, photos, stand_in_trainer):
    out = tmp_path / 'run'
    run(photos, out)
    (out / 'my_notes.txt').write_text('keep me')
    (out / 'experiments' / 'AMSNet_folder' / 'models' / 'net_g_20.pth').write_bytes(b'stale')
    run(photos, out, '--force')
    assert (out / 'my_notes.txt').read_text() == 'keep me'
    assert (out / 'experiments' / 'AMSNet_folder' / 'models' / 'net_g_20.pth').read_bytes() != b'stale'


def test_an_existing_run_needs_resume_or_force(tmp_path, photos, stand_in_trainer):
    out = tmp_path / 'run'
    run(photos, out)
    with pytest.raises(SetupError, match='pass --resume to continue it or --force'):
        run(photos, out)


@pytest.mark.parametrize('change, named', [(('--iters', '40'), "iters was 20, now 40"),
                                           (('--seed', '3'), 'seed was 0, now 3')])
def test_resume_with_other_settings_is_refused_naming_the_difference(tmp_path, photos, stand_in_trainer, change,
                                                                      named):
    out = tmp_path / 'run'
    run(photos, out)
    before = snapshot(out)
    with pytest.raises(SetupError, match=named):
        run(photos, out, '--resume', *change)
    assert snapshot(out) == before


def test_resume_without_quick_of_a_quick_run_is_refused(tmp_path, photos, stand_in_trainer):
    out = tmp_path / 'run'
    run(photos, out)
    args = train_folder.parse_args([str(photos), '--out', str(out), '--train-tile', '64', '--resume', '--quiet'])
    with pytest.raises(SetupError, match='quick was True, now False'):
        train_folder.run(args, lambda message: None)


def test_resume_with_changed_photos_is_refused(tmp_path, photos, stand_in_trainer, write_noisy_photo):
    out = tmp_path / 'run'
    run(photos, out)
    write_noisy_photo(photos / 'img_0.png', 140, 150, np.random.default_rng(7))
    write_noisy_photo(photos / 'new.png', 140, 150, np.random.default_rng(8))
    with pytest.raises(SetupError, match='inputs added: new.png; inputs changed: img_0.png'):
        run(photos, out, '--resume')


def test_resume_of_a_finished_run_with_its_settings_reuses_it_and_the_folder_can_move(tmp_path, photos,
                                                                                      stand_in_trainer):
    out = tmp_path / 'run'
    run(photos, out)
    moved = tmp_path / 'elsewhere' / 'run'
    moved.parent.mkdir()
    os.rename(out, moved)
    run(photos, moved, '--resume')
    assert len(stand_in_trainer) == 1  # nothing trained again
    options = yaml.safe_load((moved / 'denoise.yml').read_text())
    assert options['path']['pretrain_network_g'] == 'model.pth'  # beside denoise.yml, wherever the folder goes


def test_truncated_checkpoint_on_resume_is_one_line_naming_the_file(tmp_path, photos, stand_in_trainer):
    out = tmp_path / 'run'
    run(photos, out)
    checkpoint = out / 'experiments' / 'AMSNet_folder' / 'models' / 'net_g_20.pth'
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(CheckpointError, match='net_g_20.pth: not a readable checkpoint'):
        run(photos, out, '--resume')


def test_a_folder_in_use_by_another_run_is_refused(tmp_path, photos, stand_in_trainer):
    out = tmp_path / 'run'
    run(photos, out)
    with open(out / output_folder.LOCK, 'a') as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SetupError, match='in use by another amsnet-train-folder'):
            run(photos, out, '--resume')
        with pytest.raises(SetupError, match='in use'):
            run(photos, out, '--force')
    assert (out / 'denoise.yml').is_file()


def lmdb_tiles(path):
    """{key: decoded tile as stored} of a BasicSR LMDB, and the keys of its meta_info.txt."""
    with open(path / 'meta_info.txt') as handle:
        listed = [line.split('.png')[0] for line in handle]
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        tiles = {key.decode(): cv2.imdecode(np.frombuffer(value, np.uint8), cv2.IMREAD_UNCHANGED)
                 for key, value in txn.cursor()}
    env.close()
    return tiles, listed


def test_colliding_names_keep_every_photo_and_the_log_counts_the_lmdb(tmp_path, stand_in_trainer, write_noisy_photo):
    photos = tmp_path / 'photos'
    rng = np.random.default_rng(0)
    for name in ('a.png', 'a.jpg', 'sub/c.png', 'sub_c.png', 'sub_c_0000.png', 'x y%2E.png'):
        write_noisy_photo(photos / name, 64, 64, rng)  # one tile each
    logged = []
    run(photos, tmp_path / 'run', log=logged.append)
    data = tmp_path / 'run' / 'data'
    tiles, listed = lmdb_tiles(data / 'train_noisy.lmdb')
    held_out = [path.stem for path in (data / 'val_noisy').iterdir()]
    assert len(listed) == len(set(listed)) == len(tiles) - len(held_out) == 5 and len(held_out) == 1
    assert set(listed) | set(held_out) == set(tiles)
    assert any(f'6 photos -> {len(listed)} training tiles' in line for line in logged)


def test_16_bit_photos_are_packed_as_16_bit_tiles(tmp_path, stand_in_trainer, write_noisy_photo):
    photos = tmp_path / 'photos'
    stored = write_noisy_photo(photos / 'deep.png', 64, 64, np.random.default_rng(0), dtype=np.uint16)
    write_noisy_photo(photos / 'other.png', 64, 64, np.random.default_rng(1))
    run(photos, tmp_path / 'run')
    tiles, _ = lmdb_tiles(tmp_path / 'run' / 'data' / 'train_noisy.lmdb')
    (deep,) = [tile for key, tile in tiles.items() if key.startswith('deep')]
    assert deep.dtype == np.uint16 and np.array_equal(deep, stored)


def test_bad_iterations_are_refused_before_anything_is_read(tmp_path, capsys):
    for flag, value in (('--iters', '-5'), ('--iters', '0'), ('--student-iters', '-1')):
        with pytest.raises(SystemExit) as stop:
            train_folder.parse_args([str(tmp_path), '--out', str(tmp_path / 'run'), flag, value])
        assert stop.value.code == EXIT_BAD_INPUT and flag in capsys.readouterr().err


def test_no_sequence_of_runs_removes_a_file_it_did_not_create(tmp_path, stand_in_trainer, write_noisy_photo):
    """Property: sentinel files around every destructive path (the photos, a folder beside them, the parent, files put
    into the output folder and into its own sub-folders after a run) survive every sequence of new / --resume /
    --force runs, failing or not, with --out anywhere near the photos."""
    photos = tmp_path / 'photos'
    rng = np.random.default_rng(0)
    for index in range(2):
        write_noisy_photo(photos / f'img_{index}.png', 70, 70, rng)
    (photos / 'sub').mkdir()
    (photos / 'sub' / 'notes.txt').write_text('sentinel')
    (tmp_path / 'beside.txt').write_text('sentinel')
    sentinels = snapshot(tmp_path)
    outs = [photos, photos / 'sub', tmp_path, tmp_path / 'run', tmp_path / 'other']
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / 'data').mkdir()
    (tmp_path / 'other' / 'data' / 'x.txt').write_text('sentinel')
    sentinels.update(snapshot(tmp_path))
    order = np.random.default_rng(0)
    for step in range(24):
        out = outs[order.integers(len(outs))]
        flags = [(), ('--resume',), ('--force',), ('--resume', '--iters', '7')][order.integers(4)]
        with contextlib.suppress(SetupError):  # a refused run is one of the outcomes under test
            run(photos, out, *flags)
        if step == 5 and (tmp_path / 'run' / 'data').is_dir():  # the user drops files into the run's folders
            (tmp_path / 'run' / 'user.txt').write_text('sentinel')
            sentinels['run/user.txt'] = b'sentinel'
        now = snapshot(tmp_path)
        assert all(now.get(name) == content for name, content in sentinels.items()), step


def test_an_unwritable_out_is_one_line_and_exit_2(tmp_path, photos, capsys):
    (tmp_path / 'a_file').write_text('')
    assert train_folder.main([str(photos), '--out', str(tmp_path / 'a_file' / 'run'), '--quick', '--quiet']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('amsnet-train-folder: error: ') and 'a_file' in err[0], err


def test_a_moved_output_folder_still_denoises(tmp_path, photos, stand_in_trainer, monkeypatch, capsys):
    from amsnet_basicsr import denoise
    run(photos, tmp_path / 'run')
    moved = tmp_path / 'moved'
    os.rename(tmp_path / 'run', moved)
    monkeypatch.chdir(photos)
    assert denoise.main([str(photos / 'img_0.png'), str(tmp_path / 'denoised'), '-opt', str(moved / 'denoise.yml'),
                         '--quiet']) == 0, capsys.readouterr().err
    assert (tmp_path / 'denoised' / 'img_0.png').is_file()


def test_commands_that_rebuild_an_lmdb_replace_only_their_own(tmp_path):
    """amsnet-distill-prepare and prepare_sidd.py share output_folder.check_replaceable: an existing output needs
    --force, and even then only a folder holding the command's own marker is replaced; nothing is touched."""
    theirs, ours = tmp_path / 'theirs.lmdb', tmp_path / 'ours.lmdb'
    for folder in (theirs, ours):
        folder.mkdir()
        (folder / 'data.mdb').write_text('user data')
    (ours / 'marker.json').write_text('{}')
    output_folder.check_replaceable(str(tmp_path / 'new.lmdb'), marker='marker.json', command='cmd', force=False)
    with pytest.raises(SetupError, match='already exists; pass --force to rebuild it'):
        output_folder.check_replaceable(str(ours), marker='marker.json', command='cmd', force=False)
    with pytest.raises(FileExistsError, match='was not written by cmd'):
        output_folder.check_replaceable(str(theirs), marker='marker.json', command='cmd', force=True,
                                        error=FileExistsError)
    output_folder.check_replaceable(str(ours), marker='marker.json', command='cmd', force=True)
    assert (theirs / 'data.mdb').read_text() == 'user data' and (ours / 'data.mdb').read_text() == 'user data'
