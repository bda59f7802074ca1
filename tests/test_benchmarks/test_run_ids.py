"""One naming scheme: the grids' run ids and ``dgl-emu run``'s default directory both come from
:func:`dgl_emu.naming.run_name`, and every grid still gives the ids its committed results carry.

``run_ids.json`` holds the run ids of every grid in ``benchmarks/grids/`` as the runner named
them before the scheme moved to :mod:`dgl_emu.naming`; a new grid file adds its ids there (a grid
file without them fails :func:`test_every_grid_file_is_checked`).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks.gridlib.spec import expand, load_grid
from dgl_emu.config import RunConfig
from dgl_emu.naming import run_name
from dgl_emu.pipeline import default_output

from .conftest import BENCHMARKS, GRIDS

IDS = json.loads((Path(__file__).parent / "run_ids.json").read_text())


@pytest.mark.parametrize("grid", sorted(IDS))
def test_every_grid_keeps_its_run_ids(grid, tmp_path):
    runs = expand(load_grid(GRIDS / grid), work_dir=tmp_path)
    assert [r.run_id for r in runs] == IDS[grid]
    for r in runs:  # the id is the configuration's run name under the grid's axes
        assert r.run_id == run_name(r.config, list(load_grid(GRIDS / grid).axes))


def test_every_grid_file_is_checked():
    # tuned-cells specs (a ``cells`` mapping, python -m benchmarks tuned) are not grids
    grids = {p.name for p in GRIDS.glob("*.yaml") if "cells" not in yaml.safe_load(p.read_text())}
    assert grids == set(IDS)


def test_committed_results_are_named_by_grid_ids():
    """Every run result committed under ``results/<grid>/`` has the id of a run of some grid
    (a controls folder holds copies of another grid's baselines; summary, controls and compare
    are the reports written beside them)."""
    every = {i for ids in IDS.values() for i in ids}
    for grid in IDS:
        folder = BENCHMARKS / "results" / grid[:-len(".yaml")]
        for path in folder.glob("*.json"):
            if path.stem not in ("summary", "controls", "compare"):
                assert path.stem in every, path


def test_default_output_is_the_run_name_with_the_mutation_named():
    cfg = RunConfig(dataset="umls", model="rotate", dim=64).validate()
    assert default_output(cfg) == Path("runs") / "umls-rotate-uniform-mutation-d64-s0"
    assert run_name(cfg) == "umls-rotate-uniform-emu-d64-s0"
    plain = RunConfig(dataset="umls", model="rotate", dim=64, emu=False, seed=3).validate()
    assert default_output(plain) == Path("runs") / run_name(plain) == Path("runs/umls-rotate-uniform-plain-d64-s3")
    two = RunConfig(dataset="UMLS", model="distmult", separate_negatives=True).validate()
    assert default_output(two) == Path("runs/umls-distmult-uniform-mutation-2draws-d64-s0")
