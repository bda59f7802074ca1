"""Shared fixtures for the test suite."""
from __future__ import annotations

import os
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
def _private_user_cache(tmp_path_factory):
    """Parsed datasets, checksum records and the digest cache are kept in temporary folders, never in
    the user's cache: the suite fabricates datasets under registered names, and their digests must not
    become the user's records (subprocesses inherit the variables).  Torch's build cache of the fused
    kernels stays where it is, so the kernels are not compiled again for every session."""
    from torch.utils.cpp_extension import get_default_build_root

    patch = pytest.MonkeyPatch()
    patch.setenv("TORCH_EXTENSIONS_DIR", os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root())
    patch.setenv("DGL_EMU_CACHE", str(tmp_path_factory.mktemp("parsed-cache")))
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("user-cache")))
    yield
    patch.undo()
