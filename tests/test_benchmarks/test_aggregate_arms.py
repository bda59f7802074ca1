"""``python -m benchmarks aggregate --arm-field``: settings that belong to an arm (the published baselines' regulariser)
pair the arms instead of splitting rows, and are reported per side."""
from __future__ import annotations

import json
import statistics

import pytest

from benchmarks.agglib.aggregate import aggregate
from dgl_emu.config import RunConfig
from dgl_emu.utils import atomic_write_json

from .conftest import bench
from .test_grid import _by_hand, _metrics

BASE = [0.30, 0.32, 0.34]   # baseline with the whole-table penalty
EMU = [0.35, 0.36, 0.40]    # EMU without it


def _write(folder, emu_weights=(0.0, 0.0, 0.0)):
    folder.mkdir()
    for seed in range(3):
        base = RunConfig(dataset="umls", model="distmult", emu=False, seed=seed,
                         regularizer="table", regularizer_weight=1e-5)
        emu = RunConfig(dataset="umls", model="distmult", emu=True, seed=seed,
                        regularizer="lp", regularizer_weight=emu_weights[seed])
        atomic_write_json(folder / f"plain-s{seed}.json", _metrics(base, BASE[seed], BASE[seed] / 2))
        atomic_write_json(folder / f"emu-s{seed}.json", _metrics(emu, EMU[seed], EMU[seed] / 2))


def test_arm_fields_pair_the_arms_and_are_reported_per_side(tmp_path, capsys):
    res = tmp_path / "r"
    _write(res)
    split, _ = aggregate(res)  # without: two half rows, nothing compared
    assert len(split["rows"]) == 2 and all(r["difference"] is None for r in split["rows"])
    assert split["extra_fields"] == ["regularizer", "regularizer_weight"]

    assert bench("aggregate", str(res), "--arm-field", "regularizer", "--arm-field", "regularizer_weight") == 0
    summary = json.loads((res / "summary.json").read_text())
    assert summary["extra_fields"] == [] and summary["arm_fields"] == ["regularizer", "regularizer_weight"]
    (row,) = summary["rows"]
    assert row["arm_settings"] == {"baseline": {"regularizer": "table", "regularizer_weight": 1e-5},
                                   "emu": {"regularizer": "lp", "regularizer_weight": 0.0}}
    mean, half = _by_hand(BASE, EMU)
    diff = row["difference"]["mrr"]
    assert diff["mean"] == pytest.approx(mean) and diff["ci95"] == pytest.approx([mean - half, mean + half])
    assert row["baseline"]["mrr"]["mean"] == pytest.approx(statistics.fmean(BASE))
    md = (res / "summary.md").read_text()
    assert "| regularizer (base / EMU) | regularizer_weight (base / EMU) |" in md
    line = next(x for x in md.splitlines() if x.startswith("| umls"))
    assert "| umls | lookup | distmult | uniform | 64 | table / lp | 1e-05 / 0.0 | 3/3 |" in line
    assert line in capsys.readouterr().out
    assert "Arm columns" in md


def test_an_arm_field_that_varies_within_a_side_is_refused(tmp_path, capsys):
    res = tmp_path / "r"
    _write(res, emu_weights=(0.0, 0.0, 1e-3))  # one EMU seed with another weight
    assert bench("aggregate", str(res), "--arm-field", "regularizer", "--arm-field", "regularizer_weight") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --arm-field regularizer_weight: the emu runs of one row differ") and "0.001" in err
    assert not (res / "summary.md").exists()
    assert bench("aggregate", str(res), "--arm-field", "no_such_field") == 2
    assert "--arm-field no_such_field: no result's configuration has this field" in capsys.readouterr().err
