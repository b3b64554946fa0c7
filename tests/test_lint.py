"""The linter's verdict is part of the suite: ``ruff check`` with the settings of pyproject.toml (line length 120,
import order with basicsr last, pyflakes, pycodestyle, bugbear) passes on the whole repository."""
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_ruff_check_passes_on_the_repository():
    result = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--no-cache', str(REPO)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
