"""Fixtures of the qnn tests (the helpers themselves live in qnn_harness.py)."""

import zlib

import numpy as np
import pytest

from qnn_harness import lower_and_run


@pytest.fixture
def run():
    return lower_and_run


@pytest.fixture
def rng(request):
    # A fresh seed per test (stable for a given test name, so failures reproduce).
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)
