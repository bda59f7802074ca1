"""Fixtures of the CLI and pipeline tests: one small finished run shared by a module."""
from __future__ import annotations

import pytest

from .clihelp import TINY, invoke, one_thread


@pytest.fixture(autouse=True)
def single_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """``dgl-emu run`` with :data:`TINY` on the generated KG; yields ``(run_dir, result)``."""
    out = tmp_path_factory.mktemp("cli") / "run"
    result = invoke("run", *TINY, "--output", out)
    assert result.exit_code == 0, result.output
    return out, result
