"""``amsnet``: one command whose subcommands are the product's commands, with their own flags and exit statuses."""
import pytest

import amsnet_basicsr.plugin  # noqa: F401  (imported at collection: h5py asks `uname -p` once, a process)
from amsnet_basicsr import cli


def test_help_lists_every_subcommand(capsys):
    assert cli.main(['--help']) == 0 and cli.main([]) == 0
    shown = capsys.readouterr().out
    assert all(f'  {name} ' in shown for name in cli.SUBCOMMANDS)


def test_an_unknown_subcommand_is_one_error_line_and_exit_2(capsys):
    assert cli.main(['denoize']) == 2
    assert capsys.readouterr().err.splitlines()[0] == "amsnet: error: unknown subcommand 'denoize'"


@pytest.mark.parametrize('name', sorted(cli.SUBCOMMANDS))
def test_every_subcommand_reaches_its_own_parser(name, capsys, monkeypatch):
    monkeypatch.setattr('sys.argv', ['amsnet'])
    assert cli.main([name, '--help']) == 0
    assert 'usage:' in capsys.readouterr().out


def test_a_subcommand_returns_its_exit_status(tmp_path, capsys):
    assert cli.main(['denoise', str(tmp_path / 'missing.png'), str(tmp_path / 'out')]) == 2
    assert capsys.readouterr().err.strip().startswith('amsnet-denoise: error: ')
