"""Helpers for the benchmark tests: the repository's ``benchmarks`` folder and its command line."""
from __future__ import annotations

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
GRIDS = BENCHMARKS / "grids"


def bench(*args) -> int:
    """Run ``python -m benchmarks ARGS`` in this process; returns its exit status (output goes to
    the real stdout and stderr, so ``capsys`` sees it)."""
    from benchmarks.cli import main
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        return 0 if e.code is None else e.code
    return 0
