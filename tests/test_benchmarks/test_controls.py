"""``python -m benchmarks controls``: the arms of the controls grid and their seed-paired differences."""
from __future__ import annotations

import json
import shutil
import statistics

import pytest

from benchmarks.agglib import controls

from .conftest import BENCHMARKS, bench

RESULTS = BENCHMARKS / "results" / "p1-controls"


def _mrr(path):
    return json.loads(path.read_text())["test"]["both"]["realistic"]["mrr"]


@pytest.mark.skipif(not (RESULTS / "umls-distmult-uniform-smoothing-d100-s2.json").exists(),
                    reason="the committed controls results")
def test_arms_and_differences_from_the_result_files(tmp_path):
    """Each file lands in its arm (baseline, EMU, EMU with two draws, smoothing only), and each
    difference is the mean over seeds of the per-seed differences read from the files."""
    names = {"baseline": "plain", "EMU": "emu", "EMU, 2 draws": "emu-2draws", "smoothing only": "smoothing"}
    for part in names.values():
        for seed in range(3):
            shutil.copy(RESULTS / f"umls-distmult-uniform-{part}-d100-s{seed}.json", tmp_path)
    (row,) = controls.table(tmp_path)["rows"]
    assert (row["dataset"], row["model"]) == ("umls", "distmult")
    for arm, part in names.items():
        expected = statistics.fmean(_mrr(tmp_path / f"umls-distmult-uniform-{part}-d100-s{s}.json") for s in range(3))
        assert row["arms"][arm]["mean"] == pytest.approx(expected, abs=1e-12)
    for question, a, b in controls.QUESTIONS:
        by_hand = statistics.fmean(_mrr(tmp_path / f"umls-distmult-uniform-{names[a]}-d100-s{s}.json")
                                   - _mrr(tmp_path / f"umls-distmult-uniform-{names[b]}-d100-s{s}.json")
                                   for s in range(3))
        assert row["differences"][question]["mean"] == pytest.approx(by_hand, abs=1e-12), question
    assert "umls | distmult" in controls.markdown(controls.table(tmp_path))


@pytest.mark.skipif(not (RESULTS / "umls-distmult-uniform-smoothing-d100-s2.json").exists(),
                    reason="the committed controls results")
def test_the_command_writes_the_table_it_prints(tmp_path, capsys):
    for path in RESULTS.glob("umls-complex-*-d100-s*.json"):
        shutil.copy(path, tmp_path)
    expected = controls.table(tmp_path)
    assert bench("controls", tmp_path) == 0
    assert json.loads((tmp_path / "controls.json").read_text()) == json.loads(json.dumps(expected))
    md = (tmp_path / "controls.md").read_text()
    assert f"Made by `python -m benchmarks controls {tmp_path}`" in md
    assert md.endswith(controls.markdown(expected)) and controls.markdown(expected) in capsys.readouterr().out
