"""Shared fixtures for the test suite."""
from __future__ import annotations

from pathlib import Path

import pytest

#: ``../shared/datasets`` relative to the repository root (offline copies of the benchmarks).
SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def require_shared_dataset(name: str = "") -> Path:
    """Path of ``shared/datasets[/name]``, or skip the calling test cleanly if it is absent."""
    path = SHARED_DATASETS / name if name else SHARED_DATASETS
    if not path.is_dir():
        pytest.skip(f"offline dataset copy not available: {path}")
    return path


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """Root of the offline dataset copies (``../shared/datasets``); skips when absent."""
    return require_shared_dataset()


@pytest.fixture(scope="session")
def require_dataset():
    """``require_dataset(name) -> Path`` of ``shared/datasets/name``; skips the test when absent."""
    return require_shared_dataset


@pytest.fixture(autouse=True, scope="session")
def _private_parsed_cache(tmp_path_factory):
    """Parsed datasets are cached in a temporary folder, never in the user's cache (subprocesses inherit it)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("DGL_EMU_CACHE", str(tmp_path_factory.mktemp("parsed-cache")))
    yield
    patch.undo()
