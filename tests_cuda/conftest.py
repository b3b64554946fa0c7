"""CUDA-only tests (``python -m pytest tests_cuda``; run by ``scripts/gpu_check.py``). They are kept out of the
default suite (``testpaths = tests``) so that a CPU machine neither runs nor skips them; without a GPU they fail."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests'))


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.cuda)


@pytest.fixture(autouse=True)
def needs_cuda():
    assert torch.cuda.is_available(), 'tests_cuda needs a CUDA device'
