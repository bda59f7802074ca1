"""Fixtures of the training tests."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    """Run each test on one intra-op thread, restoring the previous setting afterwards.

    The tensors here are tiny; on a busy machine OpenMP's thread hand-offs cost 10-50x the
    arithmetic. Bit-identity comparisons are always made within one test, i.e. one setting.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
