"""Fixtures of the encoder tests: tiny knowledge graphs, one intra-op thread."""
from __future__ import annotations

import pytest
import torch

from dgl_emu.data import generate_cyclic_kg

from .dense import make_hand_kg


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread per test (the tensors are tiny; thread hand-offs dominate otherwise)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def hand_kg():
    """7 entities, 2 relations; several in-edges per (node, relation), a self-loop, an isolated node."""
    return make_hand_kg()


@pytest.fixture
def cyclic_kg():
    """15 entities on 3 rings of 5, 6 relations (every relation a bijection)."""
    return generate_cyclic_kg(num_rings=3, ring_size=5)


@pytest.fixture(params=["hand", "cyclic"])
def kg(request):
    """Each of the two small graphs in turn."""
    return make_hand_kg() if request.param == "hand" else generate_cyclic_kg(num_rings=3, ring_size=5)
