"""The checkpoint-ranking study (benchmarks/checkpoint_ranking.py): it trains the demo's model in this process, keeps
the weights every --every iterations, scores each on the demo's validation block (masked hold-out loss of the noisy
half, PSNR to the clean half) and reports Spearman correlations; its argument check names the problem."""
import json

import checkpoint_ranking
import pytest


def test_rank_correlations_follow_the_orderings():
    rows = [dict(masked_holdout=0.3 - 0.1 * index, psnr=20.0 + index, train_loss=0.1 * index) for index in range(4)]
    correlations = checkpoint_ranking.rank_correlations(rows)
    assert correlations['holdout_vs_psnr'] == pytest.approx(1.0)  # lower hold-out loss, higher PSNR: same order
    assert correlations['train_loss_vs_psnr'] == pytest.approx(-1.0)
    text = checkpoint_ranking.markdown(dict(rows=[dict(row, iteration=index) for index, row in enumerate(rows)],
                                            correlations=correlations))
    assert 'Checkpoint chosen by masked_holdout: iteration 3' in text and 'by PSNR: iteration 3' in text


@pytest.mark.slow
def test_a_short_run_scores_every_kept_checkpoint(tmp_path, capsys):
    result_path = tmp_path / 'ranking.json'
    assert checkpoint_ranking.main(['--iters', '6', '--every', '2', '--out', str(tmp_path / 'data'),
                                    '--json', str(result_path)]) == 0
    result = json.loads(result_path.read_text())
    assert [row['iteration'] for row in result['rows']] == [2, 4, 6]
    assert all(row['masked_holdout'] > 0 and 0 < row['psnr'] < 100 for row in result['rows'])
    assert -1 <= result['correlations']['holdout_vs_psnr'] <= 1
    assert 'Spearman rank correlation over 3 checkpoints' in capsys.readouterr().out


def test_too_few_checkpoints_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        checkpoint_ranking.main(['--iters', '4', '--every', '2'])
    assert exit_info.value.code == 2 and 'at least 3 checkpoints' in capsys.readouterr().err
