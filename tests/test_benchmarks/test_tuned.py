"""``python -m benchmarks tuned``: both arms tuned with equal budgets, best configurations retrained with
several seeds beside the smoothing-only control, and the seed-paired summary."""
from __future__ import annotations

import json
import statistics

import pytest
import yaml

from dgl_emu.config import RunConfig, load_config

from benchmarks.tunedlib.spec import load_spec

from .conftest import GRIDS, bench

SPEC = {"name": "tiny", "trials": 2, "prune_after": 1, "seeds": [0, 1],
        "base": {"dataset": "synthetic", "dim": 8, "steps": 20, "eval_every": 10, "batch_size": 64,
                 "num_negatives": 4, "progress": False},
        "cells": {"syn-distmult": {"model": "distmult", "search": {"emu.keep_prob": None,
                                                                 "optimizer.lr": {"low": 0.01, "high": 0.2}}}}}


def _write(tmp_path, spec):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _mrr(path):
    return json.loads(path.read_text())["test"]["both"]["realistic"]["mrr"]


def test_tune_retrain_and_summary(tmp_path):
    spec_path = _write(tmp_path, SPEC)
    dirs = ["--work-dir", str(tmp_path / "work"), "--results-dir", str(tmp_path / "res")]
    assert bench("tuned", str(spec_path), *dirs, "--threads", "1") == 0
    res, study = tmp_path / "res", tmp_path / "work" / "syn-distmult" / "study"
    report = json.loads((study / "report.json").read_text())
    assert report["equal_budgets"] and report["arms"]["emu"]["trials_finished"] == 2
    assert report["arms"]["baseline"]["trials_finished"] == 2
    # the cell's search overrides reach both studies: keep_prob fixed, lr narrowed
    assert "emu.keep_prob" not in report["arms"]["emu"]["search_space"]
    for arm in ("emu", "baseline"):
        assert report["arms"][arm]["search_space"]["optimizer.lr"].startswith("float in [0.01, 0.2]")
        assert 0.01 <= load_config(study / arm / "best.yaml").get("optimizer.lr") <= 0.2
    assert (res / "syn-distmult-tuning.md").read_text() == (study / "report.md").read_text()

    # the retrained arms are the studies' best configurations, only seed and output changed
    for arm in ("emu", "baseline"):
        best = load_config(study / arm / "best.yaml").to_dict()
        for seed in (0, 1):
            ran = RunConfig.from_dict(json.loads((res / f"syn-distmult-{arm}-s{seed}.json").read_text())["config"])
            got = ran.to_dict()
            assert got["seed"] == seed
            for key in ("seed", "output", "progress"):
                got.pop(key, None), best.pop(key, None)
            assert got == best, arm
    # the control: EMU's best configuration with the mutation off, the same soft labels
    emu = load_config(study / "emu" / "best.yaml").to_dict()
    smooth = RunConfig.from_dict(json.loads((res / "syn-distmult-smoothing-s0.json").read_text())["config"]).to_dict()
    assert smooth["emu"] == {"name": "smoothing", "negative_label": emu["emu"]["negative_label"],
                             "plain_weight": emu["emu"]["plain_weight"],
                             "separate_negatives": emu["emu"]["separate_negatives"]}
    assert smooth["optimizer"] == emu["optimizer"] and smooth["regularizer"] == emu["regularizer"]

    # the summary's differences are the means of the per-seed differences read from the files
    assert bench("tuned", str(spec_path), *dirs, "--summary") == 0
    summary = json.loads((res / "summary.json").read_text())
    (cell,) = summary["cells"]
    for label, a, b in (("EMU − baseline", "emu", "baseline"), ("EMU − smoothing", "emu", "smoothing"),
                        ("smoothing − baseline", "smoothing", "baseline")):
        by_hand = statistics.fmean(_mrr(res / f"syn-distmult-{a}-s{s}.json") - _mrr(res / f"syn-distmult-{b}-s{s}.json")
                                   for s in (0, 1))
        assert cell["differences"][label]["mean"] == pytest.approx(by_hand, abs=1e-12)
        assert cell["differences"][label]["n"] == 2
    assert cell["tuning"]["emu"]["best_valid_mrr"] == report["arms"]["emu"]["best_valid_mrr"]
    assert cell["tuning"]["baseline"]["seconds_trained"] == report["arms"]["baseline"]["seconds_trained"] > 0
    assert "syn-distmult | 2 trials × ≤20 steps" in (res / "summary.md").read_text()
    rst = (res / "summary.rst").read_text()  # the same tables for the docs: two csv-tables
    assert rst.count(".. csv-table::") == 2 and '"syn-distmult", "2 trials × ≤20 steps"' in rst
    assert (res / "tuned.png").stat().st_size > 0

    # a second invocation trains nothing: no new trial, no rewritten result; it rewrites the report
    # (one written by an older version is replaced)
    stamps = {p.name: p.stat().st_mtime_ns for p in res.glob("syn-distmult-*-s*.json")}
    (study / "report.md").write_text("stale\n")
    assert bench("tuned", str(spec_path), *dirs, "--threads", "1") == 0
    assert (res / "syn-distmult-tuning.md").read_text() == (study / "report.md").read_text() != "stale\n"
    assert {p.name: p.stat().st_mtime_ns for p in res.glob("syn-distmult-*-s*.json")} == stamps
    assert json.loads((study / "report.json").read_text())["arms"]["emu"]["trials_finished"] == 2


def test_ctrl_c_while_tuning_is_one_line_and_the_next_invocation_resumes(tmp_path, capsys, monkeypatch):
    spec_path = _write(tmp_path, {**SPEC, "seeds": [0]})
    dirs = ["--work-dir", str(tmp_path / "work"), "--results-dir", str(tmp_path / "res")]
    monkeypatch.setenv("DGL_EMU_TEST_SIGNAL", "SIGINT@15")  # Ctrl-C after step 15 of the first trial
    assert bench("tuned", str(spec_path), *dirs) == 130
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert "syn-distmult: interrupted at step 15 of " in out.out and "re-run the same command" in out.out
    monkeypatch.delenv("DGL_EMU_TEST_SIGNAL")
    assert bench("tuned", str(spec_path), *dirs) == 0
    rows = json.loads((tmp_path / "work" / "syn-distmult" / "study" / "emu" / "trials.json").read_text())["trials"]
    assert rows[0]["state"] == "FAIL" and {r["state"] for r in rows[1:]} <= {"COMPLETE", "PRUNED"} and len(rows) == 3
    assert rows[1]["note"] == "resumes the run of trial 0 from step 15" and rows[1]["params"] == rows[0]["params"]


@pytest.mark.parametrize("change, message", [
    ({"colour": 1}, "unknown top-level key(s): colour"),
    ({"trials": 0}, "trials: expected an integer >= 1"),
    ({"prune_warmup": 1.5}, "prune_warmup: expected a fraction of the steps in [0, 1), got 1.5"),
    ({"seeds": []}, "seeds: expected a non-empty list"),
    ({"cells": {"a": {"model": "distmul"}}}, "cells.a: "),
    ({"cells": {"a": {"seed": 3}}}, "cells.a: seed:"),
    ({"cells": {"a": {"search": {"optimizer.lr": {"low": -1.0}}}}}, "cells.a: "),
    ({"search": {"no.such": {"low": 1}}}, "cells.syn-distmult: "),
    ({"cells": {"a": {"seconds": -5}}}, "cells.a.seconds: expected a positive number of seconds, got -5"),
])
def test_bad_spec_is_one_error_line(tmp_path, capsys, change, message):
    path = _write(tmp_path, {**SPEC, **change})
    assert bench("tuned", str(path), "--work-dir", str(tmp_path / "w"), "--results-dir", str(tmp_path / "r")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"Error: {path}: ") and message in err[0], err
    assert not (tmp_path / "w").exists() and not (tmp_path / "r").exists()


def test_shipped_spec_loads():
    spec = load_spec(GRIDS / "tuned.yaml")
    assert spec.trials == 8 and spec.seeds == [0, 1, 2]
    assert spec.pruning.to_dict() == {"after": 4, "warmup": 0.25}
    assert {c.encoder.name for c in spec.cells.values()} == {"lookup", "rgcn", "compgcn"}
    assert all(c.emu_enabled for c in spec.cells.values())
    assert spec.search["umls-rgcn"] == {"optimizer.lr": {"low": 0.001, "high": 0.1}}
    assert spec.search["codex-s-distmult"] == {}


def test_equal_time_spec_gives_each_cell_its_seconds():
    """tuned-equal-time.yaml: tuned.yaml's cells, each with the seconds of its baseline's 8 trials."""
    from dgl_emu.tuning.budget import EqualTime, EqualTrials
    timed, counted = load_spec(GRIDS / "tuned-equal-time.yaml"), load_spec(GRIDS / "tuned.yaml")
    assert timed.cells == counted.cells and timed.search == counted.search
    assert timed.budgets["umls-compgcn"] == EqualTime(414.0) and timed.budgets["codex-s-complex"] == EqualTime(1200.0)
    assert all(isinstance(b, EqualTime) for b in timed.budgets.values())
    assert all(b == EqualTrials(8) for b in counted.budgets.values())


def _cell(kind, mrr_emu, mrr_base, trials=(8, 8), seconds=(600.0, 590.0)):
    from benchmarks.agglib.stats import describe, paired_difference
    arms = {"baseline": {s: mrr_base + 0.001 * s for s in (0, 1, 2)},
            "emu": {s: mrr_emu + 0.002 * s for s in (0, 1, 2)}, "smoothing": {s: mrr_base for s in (0, 1, 2)}}
    budget = {"kind": kind, "seconds": 600.0} if kind == "equal-time" else {"kind": kind, "trials": 8}
    return {"cell": "c", "equal_budgets": True, "trials": 8, "steps_per_trial": 2000, "budget": budget,
            "budget_described": "600 s of trial wall time per arm" if kind == "equal-time" else "8 trials per arm",
            "tuning": {a: {"trials_finished": n, "seconds_trained": sec} for a, n, sec in zip(("emu", "baseline"),
                                                                                           trials, seconds)},
            "arms": {a: {"mrr": m, "stats": describe(list(m.values()))} for a, m in arms.items()},
            "differences": {"EMU − baseline": paired_difference(arms["baseline"], arms["emu"]),
                            "EMU − smoothing": paired_difference(arms["smoothing"], arms["emu"])}}


def test_side_by_side_puts_each_cells_readings_in_the_order_given():
    from benchmarks.agglib.tuned import reading, side_by_side
    time = {"cells": [_cell("equal-time", 0.42, 0.41, trials=(9, 8), seconds=(612.0, 640.0))]}
    trials = {"cells": [_cell("equal-trials", 0.40, 0.41, seconds=(1800.0, 612.0))]}
    assert (reading(time), reading(trials), reading({"cells": time["cells"] + trials["cells"]})) == (
        "equal time", "equal trials", "mixed budgets")
    rows = side_by_side([time, trials]).splitlines()[2:]
    assert len(rows) == 2
    assert rows[0].startswith("| c | equal time: 600 s of trial wall time × ≤2000 steps | 9 (0.17 h) / 8 (0.18 h) |")
    assert rows[1].startswith("| c | equal trials: 8 trials × ≤2000 steps | 8 (0.50 h) / 8 (0.17 h) |")
    # EMU − baseline is the mean of the per-seed differences: 0.01 + 0.001 s at equal time, −0.01 + 0.001 s
    assert "| +0.0110 [" in rows[0] and "| -0.0090 [" in rows[1]


def test_beside_needs_the_other_specs_summary(tmp_path, capsys):
    spec_path = _write(tmp_path, SPEC)
    (tmp_path / "o").mkdir()
    other = _write(tmp_path / "o", {**SPEC, "name": "no-such-summary-here"})
    dirs = ["--work-dir", str(tmp_path / "work"), "--results-dir", str(tmp_path / "res")]
    assert bench("tuned", str(spec_path), *dirs, "--beside", str(other)) == 2
    assert "Error: --beside: goes with --summary" in capsys.readouterr().err
    assert bench("tuned", str(spec_path), *dirs, "--summary", "--beside", str(other)) == 2
    err = capsys.readouterr().err
    assert "Error: --beside:" in err and "no-such-summary-here/summary.json: no summary of" in err
