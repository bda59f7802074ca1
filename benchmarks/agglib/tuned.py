"""Summary of ``python -m benchmarks tuned``: per cell, each arm's tuning budget and the seed-paired
differences of the retrained arms (baseline, EMU, smoothing-only control)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from .report import fmt_diff, rst_table
from .stats import describe, paired_difference, verdict

__all__ = ["cell_summary", "summarize", "format_markdown", "write_summary", "reading", "side_by_side",
           "ARM_LABELS", "QUESTIONS"]

ARM_LABELS = {"baseline": "baseline", "emu": "EMU", "smoothing": "smoothing only"}
#: (label, minuend arm, subtrahend arm) of the seed-paired differences
QUESTIONS = (("EMU − baseline", "emu", "baseline"), ("EMU − smoothing", "emu", "smoothing"),
             ("smoothing − baseline", "smoothing", "baseline"))


def _test(path: Path) -> Optional[Dict[str, float]]:
    if not path.exists():
        return None
    real = json.loads(path.read_text(encoding="utf-8"))["test"]["both"]["realistic"]
    return {"mrr": float(real["mrr"]), "hits@1": float(real["hits@1"])}


def _best_values(best_yaml: Path, space: Dict[str, Any]) -> Dict[str, Any]:
    from dgl_emu.config import load_config
    if not best_yaml.exists():
        return {}
    cfg = load_config(best_yaml)
    return {path: cfg.get(path) for path in space}


def cell_summary(spec, cell: str) -> Dict[str, Any]:
    """The tuning budget per arm (from the study's ``report.json``) and the retrained metrics.

    ``arms[arm]["mrr"]`` maps seed to test MRR (filtered, realistic ties, both sides) read from
    ``<results>/<cell>-<arm>-s<seed>.json``; ``differences[label]`` is the seed-paired
    difference with its 95 % t-interval (:func:`.stats.paired_difference`).
    """
    report_path = spec.study_dir(cell) / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    out: Dict[str, Any] = {"cell": cell, "equal_budgets": bool(report and report["equal_budgets"]),
                           "trials": spec.trials, "budget": spec.budgets[cell].to_dict(),
                           "budget_described": spec.budgets[cell].describe(),
                           "steps_per_trial": spec.cells[cell].training.steps,
                           "tuning": {}, "arms": {}, "differences": {}}
    if report is not None:
        for arm in ("emu", "baseline"):
            a = report["arms"][arm]
            out["tuning"][arm] = {
                "trials_finished": a["trials_finished"], "complete": a["complete"], "pruned": a["pruned"],
                "diverged": a["diverged"], "steps_trained": a["steps_trained"],
                "seconds_trained": a.get("seconds_trained"),
                "best_valid_mrr": a["best_valid_mrr"],
                "best_values": _best_values(spec.study_dir(cell) / arm / "best.yaml", a["search_space"])}
    for arm in ARM_LABELS:
        by_seed = {s: _test(spec.results_dir / f"{cell}-{arm}-s{s}.json") for s in spec.seeds}
        by_seed = {s: m for s, m in by_seed.items() if m is not None}
        out["arms"][arm] = {"mrr": {s: m["mrr"] for s, m in by_seed.items()},
                            "hits@1": {s: m["hits@1"] for s, m in by_seed.items()},
                            "stats": describe([m["mrr"] for m in by_seed.values()])}
    for label, a, b in QUESTIONS:
        out["differences"][label] = paired_difference(out["arms"][b]["mrr"], out["arms"][a]["mrr"])
    return out


def summarize(spec) -> Dict[str, Any]:
    """:func:`cell_summary` of every cell of ``spec``."""
    return {"spec": str(spec.path), "metric": "test MRR (filtered, realistic ties, both sides)",
            "trials_per_arm": spec.trials, "seeds": spec.seeds,
            "cells": [cell_summary(spec, cell) for cell in spec.cells]}


def _mean(stats: Dict[str, Any]) -> str:
    if not stats["n"]:
        return "—"
    sd = f" ± {stats['std']:.4f}" if stats["std"] is not None else ""
    return f"{stats['mean']:.4f}{sd} (n={stats['n']})"


def _values(values: Dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()) or "—"


def _budget(c: Dict[str, Any]) -> str:
    """A cell's tuning budget per arm: ``8 trials × ≤2000 steps``, ``619 s of trial wall time × ≤2000 steps``."""
    given = (f"{c['trials']} trials" if c.get("budget", {}).get("kind", "equal-trials") == "equal-trials"
             else c["budget_described"].replace(" per arm", ""))
    return f"{given} × ≤{c['steps_per_trial']} steps" + ("" if c["equal_budgets"] else " (incomplete)")


def reading(summary: Dict[str, Any]) -> str:
    """What the summary's budgets make equal: ``"equal trials"``, ``"equal time"`` or ``"mixed budgets"``."""
    kinds = {c.get("budget", {}).get("kind", "equal-trials") for c in summary["cells"]}
    return {frozenset({"equal-trials"}): "equal trials", frozenset({"equal-time"}): "equal time"}.get(
        frozenset(kinds), "mixed budgets")


def format_markdown(summary: Dict[str, Any]) -> str:
    """The verdict table (one row per cell) and the tuning table (one row per cell and arm)."""
    head = ["cell", "tuning budget per arm", *ARM_LABELS.values(), *(q for q, _, _ in QUESTIONS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in summary["cells"]:
        budget = _budget(c)
        arms = [_mean(c["arms"][a]["stats"]) for a in ARM_LABELS]
        diffs = [f"{fmt_diff(c['differences'][q])} {verdict(c['differences'][q])}" if c["differences"][q] else "—"
                 for q, _, _ in QUESTIONS]
        lines.append("| " + " | ".join([c["cell"], budget, *arms, *diffs]) + " |")
    lines += ["", "| cell | arm | trials (complete / pruned / diverged) | steps trained | hours of trials "
              "| best valid MRR | best values |", "|---|---|---|---:|---:|---:|---|"]
    for c in summary["cells"]:
        for arm, t in c["tuning"].items():
            best = f"{t['best_valid_mrr']:.4f}" if t["best_valid_mrr"] is not None else "—"
            hours = f"{t['seconds_trained'] / 3600:.2f}" if t["seconds_trained"] is not None else "—"
            lines.append(f"| {c['cell']} | {ARM_LABELS[arm]} | {t['trials_finished']} ({t['complete']} / "
                         f"{t['pruned']} / {t['diverged']}) | {t['steps_trained']} | {hours} | {best} | "
                         f"{_values(t['best_values'])} |")
    return "\n".join(lines) + "\n"


def side_by_side(summaries: Sequence[Dict[str, Any]]) -> str:
    """The same cells under several budgets, one row per cell and budget (in the order given): each
    arm's retrained test MRR and the seed-paired differences, with the trials and hours of tuning
    each arm got. Cells missing from any summary are left out.

    Examples
    --------
    >>> one = {"cells": [{"cell": "c", "budget": {"kind": "equal-time"},
    ...        "budget_described": "9 s of trial wall time per arm", "trials": 8, "steps_per_trial": 20,
    ...        "equal_budgets": False, "tuning": {}, "arms": {a: {"stats": {"n": 0}} for a in ARM_LABELS},
    ...        "differences": {q: None for q, _, _ in QUESTIONS}}]}
    >>> side_by_side([one]).splitlines()[2]
    '| c | equal time: 9 s of trial wall time × ≤20 steps (incomplete) | — | — | — | — | — | — |'
    """
    shared = [c["cell"] for c in summaries[0]["cells"]
              if all(any(o["cell"] == c["cell"] for o in s["cells"]) for s in summaries[1:])]
    questions = QUESTIONS[:2]
    head = ["cell", "reading: tuning budget per arm", "trials EMU / baseline (hours)", *ARM_LABELS.values(),
            *(q for q, _, _ in questions)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in shared:
        for summary in summaries:
            c = next(o for o in summary["cells"] if o["cell"] == name)
            t = c["tuning"]
            used = "—" if not t else " / ".join(
                f"{t[a]['trials_finished']} ({t[a]['seconds_trained'] / 3600:.2f} h)" if t[a]["seconds_trained"]
                else str(t[a]["trials_finished"]) for a in ("emu", "baseline"))
            diffs = [f"{fmt_diff(c['differences'][q])} {verdict(c['differences'][q])}" if c["differences"][q]
                     else "—" for q, _, _ in questions]
            lines.append("| " + " | ".join([name, f"{reading({'cells': [c]})}: {_budget(c)}", used,
                                             *(_mean(c["arms"][a]["stats"]) for a in ARM_LABELS), *diffs]) + " |")
    return "\n".join(lines) + "\n"


def _plot(summary: Dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cells = [c for c in summary["cells"] if any(c["arms"][a]["stats"]["n"] for a in ARM_LABELS)]
    if not cells:
        return
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(cells)), 3.2))
    width = 0.27
    for i, arm in enumerate(ARM_LABELS):
        stats = [c["arms"][arm]["stats"] for c in cells]
        xs = [j + (i - 1) * width for j in range(len(cells))]
        ax.bar(xs, [s["mean"] or 0.0 for s in stats], width, yerr=[s["std"] or 0.0 for s in stats],
               label=ARM_LABELS[arm], capsize=2)
    ax.set_xticks(range(len(cells)), [c["cell"] for c in cells], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test MRR (mean ± sd over seeds)")
    ax.set_title(f"Tuned arms, {reading(summary)}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path(__file__).resolve().parents[2]))
    except ValueError:
        return str(path)


#: how the arms' budgets were made equal, by :func:`reading`
HOW = {"equal trials": "with the same number of trials of the same steps",
       "equal time": ("with the same wall time of trials on the same machine (the arm that had used less "
                      "running the next trial, so the two alternated; an arm with cheaper trials ran more of "
                      "them, and an arm may run past its time by its last trial)"),
       "mixed budgets": "with the budget each cell's row states"}


def _committed(spec) -> Dict[str, Any]:
    """The ``summary.json`` that ``--summary`` wrote for ``spec`` (its studies need not be here)."""
    path = spec.results_dir / "summary.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no summary of {spec.path} (write it first: python -m benchmarks tuned "
                                f"{_shown(spec.path)} --summary)")
    return json.loads(path.read_text(encoding="utf-8"))


def write_summary(spec, beside: Sequence[Any] = ()) -> str:
    """Write ``summary.md``, ``summary.rst`` (the tables, for the docs), ``summary.json`` and
    ``tuned.png`` into the spec's results folder; returns the markdown tables. With ``beside``
    (other specs of the same cells, e.g. the equal-trials ``tuned.yaml`` beside the equal-time
    one), also ``side-by-side.md``/``.rst``: :func:`side_by_side` of this spec's summary and the
    ``summary.json`` each of those has in its results folder."""
    summary = summarize(spec)
    folder = spec.results_dir
    folder.mkdir(parents=True, exist_ok=True)
    text = format_markdown(summary)
    (folder / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    (folder / "summary.md").write_text(
        f"# Tuned cells ({spec.path.name}), {summary['metric']}\n\n"
        f"Made by `python -m benchmarks tuned {_shown(spec.path)} --summary`. "
        f"Both arms of a cell were tuned by `dgl-emu tune --compare-emu` {HOW[reading(summary)]} "
        "(the baseline searches the same ranges except EMU's own); each arm's best "
        f"configuration was then trained with seeds {', '.join(map(str, spec.seeds))}; 'smoothing only' is "
        "EMU's best configuration with the mutation switched off (its soft labels on un-mutated "
        "negatives). Differences are seed-paired with 95 % t-intervals; the word says whether the "
        "interval lies above zero (better), below (worse) or contains it (unclear). Per-cell tuning "
        "reports: `<cell>-tuning.md`.\n\n" + text)
    (folder / "summary.rst").write_text(rst_table(text))
    _plot(summary, folder / "tuned.png")
    if beside:
        others = [_committed(o) for o in beside]
        table = side_by_side([summary, *others])
        shown = ", ".join(f"`{_shown(s.path)}`" for s in (spec, *beside))
        (folder / "side-by-side.md").write_text(
            f"# The same cells at {' and at '.join(reading(s) for s in (summary, *others))}, {summary['metric']}\n\n"
            f"Made by `python -m benchmarks tuned {_shown(spec.path)} --summary "
            + " ".join(f"--beside {_shown(o.path)}" for o in beside)
            + f"`, from {shown}: for each cell, one row per budget, each arm's best configuration retrained "
            "with the same seeds; differences seed-paired with 95 % t-intervals. Trials and hours are "
            "what each arm's tuning used (wall time of its trials).\n\n" + table)
        (folder / "side-by-side.rst").write_text(rst_table(table))
        text += "\n" + table
    return text
