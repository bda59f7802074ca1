"""``python -m benchmarks compare``: the same runs of two results folders, paired by seed."""
from __future__ import annotations

import json
import shutil

import pytest

from benchmarks.agglib.compare import compare_folders, write_comparison

from .conftest import BENCHMARKS

CELL = "umls-distmult-uniform-emu-d100"


def test_differences_are_new_minus_old_paired_by_seed(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    shifts = {0: 0.01, 1: 0.03, 2: 0.02}
    for seed, shift in shifts.items():
        source = BENCHMARKS / "results" / "p1-shallow" / f"{CELL}-s{seed}.json"
        shutil.copy(source, old / source.name)
        data = json.loads(source.read_text())
        data["test"]["both"]["realistic"]["mrr"] += shift
        (new / source.name).write_text(json.dumps(data))
    rows = compare_folders(old, new)
    assert len(rows) == 1 and (rows[0]["dataset"], rows[0]["model"], rows[0]["emu"]) == ("umls", "distmult", True)
    diff = rows[0]["mrr"]["difference"]
    assert diff["n"] == 3 and diff["mean"] == pytest.approx(0.02, abs=1e-12)
    assert diff["sd"] == pytest.approx(0.01, abs=1e-12)
    # 95 % t-interval: 0.02 ± t(0.975, 2) * 0.01 / sqrt(3) = 0.02 ± 0.024841
    assert diff["ci95"] == pytest.approx([0.02 - 0.0248414, 0.02 + 0.0248414], abs=1e-6)
    assert rows[0]["hits@1"]["difference"]["mean"] == pytest.approx(0.0, abs=1e-12)
    text = write_comparison(old, new, tmp_path / "out")
    assert "| umls-distmult-uniform-d100-emu | 3 |" in text and "The MRR interval contains 0 in 1 of 1 cells." in text
    assert json.loads((tmp_path / "out" / "compare.json").read_text())["rows"][0]["mrr"]["difference"]["n"] == 3
