"""amsnet-train-folder's tile budget: a folder with more tiles than ``max_train_tiles`` (plus its held-out share) packs
a seeded sample of them, so the training LMDB and the teacher's targets stay the same size for any folder; a smaller
folder packs all of its tiles, as before the budget.

Training is the ``stand_in_trainer`` fixture (the untrained network saved as the checkpoint): no process."""
from pathlib import PurePath

import cv2
import lmdb
import numpy as np
import pytest

from amsnet_basicsr import demo_data, recipes, train_folder
from amsnet_basicsr.errors import EXIT_BAD_INPUT, SetupError

TILE = 64
QUICK_BUDGET = recipes.RECIPES['quick']['max_train_tiles']


def run(photos, out, *flags, log=None):
    args = train_folder.parse_args([str(photos), '--out', str(out), '--quick', '--train-tile', str(TILE), '--quiet',
                                    *flags])
    return train_folder.run(args, log or (lambda message: None))


def packed(out):
    """(training keys of meta_info.txt, held-out keys, {key: stored tile} of the LMDB) of a run's ``out/data``."""
    data = out / 'data'
    with open(data / 'train_noisy.lmdb' / 'meta_info.txt') as handle:
        training = [line.split('.png')[0] for line in handle]
    held_out = sorted(path.stem for path in (data / 'val_noisy').iterdir())
    env = lmdb.open(str(data / 'train_noisy.lmdb'), readonly=True, lock=False)
    with env.begin() as txn:
        tiles = {key.decode(): cv2.imdecode(np.frombuffer(value, np.uint8), cv2.IMREAD_UNCHANGED)
                 for key, value in txn.cursor()}
    env.close()
    return training, held_out, tiles


def every_tile(stored):
    """{key: tile} of every non-overlapping tile of the photos ``stored`` ({file name: array as written})."""
    return {f'{train_folder.photo_key(PurePath(name))}_{top:04d}_{left:04d}':
            image[top:top + TILE, left:left + TILE]
            for name, image in stored.items() for top, left in demo_data.block_corners(*image.shape[:2], size=TILE)}


@pytest.fixture
def big_folder(tmp_path, write_noisy_photo):
    """Three photos of 3 x 4 tiles: 36 candidate tiles, more than the quick budget plus its held-out tile."""
    folder = tmp_path / 'photos'
    rng = np.random.default_rng(0)
    stored = {f'img_{index}.png': write_noisy_photo(folder / f'img_{index}.png', 200, 260, rng) for index in range(3)}
    assert len(every_tile(stored)) == 36 > train_folder.tiles_to_pack(QUICK_BUDGET)
    return folder, stored


def test_a_folder_over_the_budget_packs_a_seeded_sample_and_says_so(tmp_path, big_folder, stand_in_trainer):
    """Exactly the budget's training tiles plus the held-out share of the sample, each the photo's pixels at its
    key; the teacher's targets are computed on those training tiles only; the log names the counts and the budget;
    the same seed packs the same tiles and another seed others."""
    photos, stored = big_folder
    logged = []
    run(photos, tmp_path / 'run', log=logged.append)
    training, held_out, tiles = packed(tmp_path / 'run')
    assert len(training) == len(set(training)) == QUICK_BUDGET and len(held_out) == 1
    assert not set(training) & set(held_out) and set(tiles) == set(training) | set(held_out)
    candidates = every_tile(stored)
    for key, tile in tiles.items():
        np.testing.assert_array_equal(tile, candidates[key])
    with open(tmp_path / 'run' / 'data' / 'train_teacher.lmdb' / 'meta_info.txt') as handle:
        assert sorted(line.split('.png')[0] for line in handle) == sorted(training)  # targets: the budget, no more
    assert (f"3 photos -> 36 candidate tiles of {TILE}x{TILE}; sampled {QUICK_BUDGET} for training (+1 held out) "
            f"from 3 photos with --seed 0, budget max_train_tiles={QUICK_BUDGET} (recipes.RECIPES['quick'])") in \
        '\n'.join(logged)

    run(photos, tmp_path / 'same', '--student-iters', '0')
    assert packed(tmp_path / 'same')[:2] == (training, held_out)
    run(photos, tmp_path / 'other', '--student-iters', '0', '--seed', '1')
    other_training, other_held_out, _ = packed(tmp_path / 'other')
    assert len(other_training) == QUICK_BUDGET and set(other_training) | set(other_held_out) != set(tiles)


def test_the_flag_overrides_the_recipe_and_holds_out_every_20th_of_the_sample(tmp_path, big_folder,
                                                                                stand_in_trainer):
    photos, _ = big_folder
    logged = []
    run(photos, tmp_path / 'run', '--max-train-tiles', '30', '--student-iters', '0', log=logged.append)
    training, held_out, tiles = packed(tmp_path / 'run')
    kept = sorted(tiles)  # keys sort in packing order here: one photo after another, corners in raster order
    assert len(training) == 30 and held_out == [kept[10], kept[30]] == sorted(train_folder.held_out(kept))
    assert 'sampled 30 for training (+2 held out)' in '\n'.join(logged)
    assert 'budget max_train_tiles=30 (--max-train-tiles)' in '\n'.join(logged)


def test_a_folder_under_the_budget_packs_every_tile(tmp_path, write_noisy_photo, stand_in_trainer):
    photos = tmp_path / 'photos'
    rng = np.random.default_rng(0)
    stored = {f'img_{index}.png': write_noisy_photo(photos / f'img_{index}.png', 140, 150, rng) for index in range(2)}
    logged = []
    run(photos, tmp_path / 'run', '--student-iters', '0', log=logged.append)
    training, held_out, tiles = packed(tmp_path / 'run')
    candidates = every_tile(stored)
    assert set(tiles) == set(candidates) and len(training) == 7 and len(held_out) == 1
    assert (f'2 photos -> 7 training tiles of {TILE}x{TILE}' in '\n'.join(logged) and
            f"(all 8 tiles: within the budget max_train_tiles={QUICK_BUDGET} (recipes.RECIPES['quick']))" in
            '\n'.join(logged))


def test_the_budget_is_a_recorded_setting_resume_with_another_is_refused(tmp_path, big_folder, stand_in_trainer):
    photos, _ = big_folder
    out = tmp_path / 'run'
    trained = run(photos, out, '--student-iters', '0')
    assert trained.settings['max_train_tiles'] == QUICK_BUDGET
    with pytest.raises(SetupError, match=f'max_train_tiles was {QUICK_BUDGET}, now 30'):
        run(photos, out, '--student-iters', '0', '--resume', '--max-train-tiles', '30')
    run(photos, out, '--student-iters', '0', '--resume', '--max-train-tiles', str(QUICK_BUDGET))  # the same budget


@pytest.mark.parametrize('value', ['1', '0', '-3', 'many'])
def test_a_budget_under_two_tiles_is_one_parser_error(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as stop:
        train_folder.parse_args([str(tmp_path), '--out', str(tmp_path / 'run'), '--max-train-tiles', value])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == EXIT_BAD_INPUT and '--max-train-tiles' in err[-1], err


def test_tiles_to_pack_leaves_the_budget_for_training():
    for budget in range(2, 500):
        count = train_folder.tiles_to_pack(budget)
        assert count - len(train_folder.held_out(range(count))) == budget
        assert count - 1 - len(train_folder.held_out(range(count - 1))) < budget  # and no more tiles than that
    assert [train_folder.tiles_to_pack(budget) for budget in (2, 9, 10, 24, 30, 192, 300)] == [3, 10, 11, 25, 32, 202,
                                                                                                316]


def test_the_full_demo_packs_all_of_its_tiles():
    """The folder recipe's budget keeps the demo's six photos whole (its published scores were trained on all of
    their tiles); a larger folder is sampled."""
    config = recipes.RECIPES['folder']
    sides = {**{name: config['max_train_side'] for name in config['train_images']},
             demo_data.VAL_IMAGE: config['max_eval_side']}
    tiles = sum(len(demo_data.block_corners(*demo_data.photo(name, max_side=side).shape[:2], size=config['train_tile']))
                for name, side in sides.items())
    assert tiles == 296 <= train_folder.tiles_to_pack(config['max_train_tiles'])
