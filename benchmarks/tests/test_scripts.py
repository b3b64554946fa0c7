"""Every research script runs from a checkout as ``python benchmarks/<name>.py`` (no wrapper, nothing installed but
the package), and benchmarks/README.md lists each one with its command and a result page that exists. A module of
benchmarks/ without a ``__main__`` block (``common.py``, the scripts' shared helpers; ``apbsn.py``, the ablation's
AP-BSN comparison) is no script: a script imports it."""
import re
import subprocess
import sys

import pytest

from helpers import REPO

MODULES = sorted((REPO / 'benchmarks').glob('*.py'))
SCRIPTS = [path.stem for path in MODULES if "if __name__ == '__main__':" in path.read_text(encoding='utf-8')]


@pytest.mark.slow
@pytest.mark.parametrize('name', SCRIPTS)
def test_script_runs_from_the_checkout(name, tmp_path):
    result = subprocess.run([sys.executable, str(REPO / 'benchmarks' / f'{name}.py'), '--help'], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and 'usage:' in result.stdout, result.stderr[-2000:]


def test_every_other_module_is_a_helper_the_scripts_import():
    helpers = [path.stem for path in MODULES if path.stem not in SCRIPTS]
    assert helpers == ['apbsn', 'common']
    sources = [(REPO / 'benchmarks' / f'{name}.py').read_text(encoding='utf-8') for name in SCRIPTS]
    assert all(any(re.search(rf'^(from {name} import|import {name}\b)', source, re.MULTILINE) for source in sources)
               for name in helpers)
    readme = (REPO / 'benchmarks' / 'README.md').read_text(encoding='utf-8')
    assert all(f'`{name}.py`' in readme for name in helpers)


def test_readme_lists_every_script_with_its_command():
    readme = (REPO / 'benchmarks' / 'README.md').read_text(encoding='utf-8')
    assert len(SCRIPTS) >= 5  # the glob found them
    for name in SCRIPTS:
        assert f'python benchmarks/{name}.py' in readme, name
    for page in readme.split('](results/')[1:]:
        assert (REPO / 'benchmarks' / 'results' / page.split(')')[0]).is_file(), page
