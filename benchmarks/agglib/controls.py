"""The controls table: per dataset and model, the baseline, EMU with one shared draw of negatives,
EMU with two draws (the reference code's protocol) and the label-smoothing-only control, with the
seed-paired differences that answer two questions:

* does the protocol matter? (two draws − one draw)
* where does EMU's gain come from? (smoothing − baseline: the soft labels alone; EMU − smoothing:
  what the mutation adds on top of them)

Test MRR, filtered, realistic ties, both sides; 95 % t-intervals over the paired seeds.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict

from .records import load_results
from .report import fmt_diff
from .stats import describe, paired_difference, verdict

__all__ = ["ARMS", "QUESTIONS", "arm", "table", "markdown", "write_controls"]

ARMS = ("baseline", "EMU", "EMU, 2 draws", "smoothing only")
#: (label, minuend arm, subtrahend arm) of the seed-paired differences
QUESTIONS = (("2 draws − 1 draw", "EMU, 2 draws", "EMU"), ("smoothing − baseline", "smoothing only", "baseline"),
             ("EMU − smoothing", "EMU", "smoothing only"), ("EMU − baseline", "EMU", "baseline"))


def arm(record: Dict[str, Any]) -> str:
    """The arm of a result record (:func:`.records.load_results`), or ``""`` for another EMU variant."""
    cfg = record["config"]
    if not record["emu"]:
        return "baseline"
    if str(cfg.get("mutation")).lower() == "smoothing":
        return "smoothing only"
    if str(cfg.get("mutation")).lower() != "mutation":
        return ""
    return "EMU, 2 draws" if cfg.get("separate_negatives") else "EMU"


def table(directory) -> Dict[str, Any]:
    """Per (dataset, model) at d=100: each arm's test MRR over seeds and the differences of :data:`QUESTIONS`.

    Parameters
    ----------
    directory : path-like
        A folder of per-run result JSONs.

    Returns
    -------
    dict
        ``{"metric": ..., "rows": [{"dataset", "model", "arms", "differences"}, ...]}``.
    """
    cells = defaultdict(lambda: defaultdict(dict))
    for r in load_results(directory):
        name = arm(r)
        if name and r["dim"] == 100:
            cells[(r["dataset"], r["model"])][name][r["seed"]] = r["mrr"]
    out = []
    for (dataset, model), arms in cells.items():
        row = {"dataset": dataset, "model": model,
               "arms": {a: describe(list(arms[a].values())) for a in ARMS if arms.get(a)}}
        row["differences"] = {q: paired_difference(arms.get(b, {}), arms.get(a, {})) for q, a, b in QUESTIONS}
        out.append(row)
    return {"metric": "test MRR (filtered, realistic, both sides)", "rows": out}


def markdown(result: Dict[str, Any]) -> str:
    """The Markdown table of :func:`table`'s ``result``."""
    head = ["dataset", "model", *ARMS, *(q for q, _, _ in QUESTIONS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in result["rows"]:
        arms = [f"{row['arms'][a]['mean']:.4f} (n={row['arms'][a]['n']})" if a in row["arms"] else "—" for a in ARMS]
        diffs = [f"{fmt_diff(row['differences'][q])} {verdict(row['differences'][q])}" for q, _, _ in QUESTIONS]
        lines.append("| " + " | ".join([row["dataset"], row["model"], *arms, *diffs]) + " |")
    return "\n".join(lines) + "\n"


def write_controls(folder: Path) -> str:
    """Write ``controls.md`` and ``controls.json`` into ``folder``; returns the Markdown table."""
    result = table(folder)
    text = markdown(result)
    (folder / "controls.json").write_text(json.dumps(result, indent=1) + "\n")
    (folder / "controls.md").write_text(
        f"# Controls ({folder.name}), {result['metric']}\n\nMade by `python -m benchmarks controls {folder}`; "
        "differences are seed-paired, 95 % t-intervals; the verdict word says whether the interval "
        "lies above zero (better), below (worse) or contains it (unclear).\n\n" + text)
    return text
