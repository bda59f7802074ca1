"""Helpers for the benchmark-script tests: import benchmarks/run_grid.py and aggregate.py."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
GRIDS = BENCHMARKS / "grids"


def _load(name: str):
    module_name = f"benchmarks_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def run_grid():
    """The ``benchmarks/run_grid.py`` module."""
    return _load("run_grid")  # registered as benchmarks_run_grid


@pytest.fixture(scope="session")
def aggregate():
    """The ``benchmarks/aggregate.py`` module."""
    return _load("aggregate")  # registered as benchmarks_aggregate


@pytest.fixture(scope="session")
def speed():
    """The ``benchmarks/speed.py`` module."""
    return _load("speed")
