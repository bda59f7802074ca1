"""Test tiers, applied by path: ``python -m pytest -m "not slow"`` is the inner loop (about a
minute on two cores); ``python -m pytest`` (the README's command, CI) runs everything.

``slow``: the test starts processes (``torchrun``, DGL's servers and trainers, a CLI killed with a
signal, the Sphinx build) or trains to convergence. ``distributed``: it needs
``torch.distributed`` or ``dgl.distributed`` (local processes on 127.0.0.1 only).
"""
from __future__ import annotations

from fnmatch import fnmatch

import pytest

#: node-id patterns (``path`` or ``path::test``) -> the markers their tests get
TIERS = {
    "tests/test_sharded/test_sharded.py": ("slow", "distributed"),
    "tests/test_training/test_distributed.py": ("slow", "distributed"),
    "tests/test_docs.py": ("slow",),
    "tests/test_tuning/test_study.py": ("slow",),
    "tests/test_tuning/test_equal_time.py::test_equal_time_*": ("slow",),
    "tests/test_tuning/test_equal_time.py::test_the_cli_*": ("slow",),
    "tests/test_benchmarks/test_speed.py": ("slow",),
    "tests/test_cli/test_bad_input.py::test_interrupted_*": ("slow",),
    "tests/test_cli/test_trust_processes.py": ("slow", "distributed"),
    "tests/test_cli/test_faults.py": ("slow", "distributed"),
    "tests/test_benchmarks/test_grid.py::test_published_grids_expand": ("slow",),
    "tests/test_training/test_regimes.py::test_each_regime_trains_the_generated_kg*": ("slow",),
    "tests/test_training/test_interactions_train.py": ("slow",),
}


def pytest_collection_modifyitems(config, items):
    """Mark every collected test whose node id matches a :data:`TIERS` pattern."""
    for item in items:
        for pattern, marks in TIERS.items():
            if fnmatch(item.nodeid, pattern) or fnmatch(item.nodeid, pattern + "::*"):
                for mark in marks:
                    item.add_marker(getattr(pytest.mark, mark))
