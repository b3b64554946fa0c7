"""Every research script runs from a checkout as ``python benchmarks/<name>.py`` (no wrapper, nothing installed but
the package), and benchmarks/README.md lists each one with its command and a result page that exists."""
import subprocess
import sys

import pytest

from helpers import REPO

SCRIPTS = sorted(path.stem for path in (REPO / 'benchmarks').glob('*.py'))


@pytest.mark.slow
@pytest.mark.parametrize('name', SCRIPTS)
def test_script_runs_from_the_checkout(name, tmp_path):
    result = subprocess.run([sys.executable, str(REPO / 'benchmarks' / f'{name}.py'), '--help'], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and 'usage:' in result.stdout, result.stderr[-2000:]


def test_readme_lists_every_script_with_its_command():
    readme = (REPO / 'benchmarks' / 'README.md').read_text(encoding='utf-8')
    assert len(SCRIPTS) >= 5  # the glob found them
    for name in SCRIPTS:
        assert f'python benchmarks/{name}.py' in readme, name
    for page in readme.split('](results/')[1:]:
        assert (REPO / 'benchmarks' / 'results' / page.split(')')[0]).is_file(), page
