"""The benchmarks' tests share the package tests' fixtures and tiers: everything of ``tests/conftest.py`` (its autouse
fixtures included: a fast test starts no process, one torch thread) is defined here too, ``benchmarks/`` is on
``sys.path``, so the tests import the scripts as modules (``import ablation``, ``import data_shift``), and so is
``tests/`` (put there by ``tests/conftest.py``), so they import its plain helpers (``from helpers import REPO``)."""
import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1]
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

# tests/conftest.py under a name of its own: this file is the module ``conftest`` while benchmarks/tests is collected
_spec = importlib.util.spec_from_file_location('amsnet_tests_conftest', BENCHMARKS.parent / 'tests' / 'conftest.py')
if _spec.name not in sys.modules:
    sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_spec.name])

from amsnet_tests_conftest import *  # noqa: E402,F401,F403  (the fixtures)
