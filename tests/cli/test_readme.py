"""The README's quick start is what CI runs, and the repository cites only what a reader can follow."""
import re
import shlex
from pathlib import Path

from helpers import REPO


def quick_start_commands():
    """The command lines of the first bash block under '## Quick start', without their comments."""
    section = REPO.joinpath('README.md').read_text(encoding='utf-8').split('## Quick start', 1)[1]
    block = section.split('```bash\n', 1)[1].split('```', 1)[0]
    return [line.split('  #', 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command_in_a_new_venv():
    ci = REPO.joinpath('.ci', 'run').read_text()
    test_command = shlex.split(re.search(r'^TEST_COMMAND=(.*)$', ci, re.M).group(1))[0]
    commands = quick_start_commands()
    assert len(commands) == 2 and commands[1] == test_command, (commands, test_command)
    assert 'python -m amsnet_basicsr.demo' in commands[0] and commands[0].startswith('pip install -e .')
    assert 'python3 -m venv' in ci and 'eval "$TEST_COMMAND"' in ci


def test_no_reference_a_reader_cannot_follow():
    """No distilled-notes sections, missing notes files, tracker numbers or unreleased torch builds."""
    pattern = re.compile(r'SPEC|notes/|\b[Ii]ssues? #?\d|torch 2\.1[5-9]')
    offenders = []
    for path in sorted(REPO.rglob('*')):
        if path.suffix not in {'.py', '.md', '.yml', '.ini', '.txt', '.cfg'} and path.name != 'run':
            continue
        if any(part.startswith('.') and part != '.ci' for part in path.relative_to(REPO).parts) or \
                'egg-info' in str(path) or path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(encoding='utf-8', errors='replace').splitlines(), 1):
            if pattern.search(line):
                offenders.append(f'{path.relative_to(REPO)}:{number}: {line.strip()}')
    assert not offenders, '\n'.join(offenders)
