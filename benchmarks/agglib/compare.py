"""The same runs in two results folders (e.g. before and after a change of EMU's mask stream):
per cell (dataset, encoder, model, sampler, dimension, EMU on/off), the seed-paired difference
of test MRR and Hits@1, new minus old, with its 95 % t-interval."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

from .records import load_results, sort_key
from .report import fmt_diff
from .stats import describe, paired_difference

__all__ = ["compare_folders", "format_comparison", "write_comparison"]


def _cells(records) -> Dict[Tuple, Dict[int, Dict[str, Any]]]:
    cells: Dict[Tuple, Dict[int, Dict[str, Any]]] = {}
    for r in records:
        key = (r["dataset"], r["encoder"], r["model"], r["sampler"], r["dim"], r["emu"])
        cells.setdefault(key, {})[r["seed"]] = r
    return cells


def compare_folders(old: Path, new: Path) -> List[Dict[str, Any]]:
    """One row per cell of ``new`` that ``old`` has too: each side's mean and the paired
    difference (new − old) of test MRR and Hits@1 over the seeds both have."""
    before, after = _cells(load_results(old)), _cells(load_results(new))
    rows = []
    for key in sorted(set(after) & set(before),
                      key=lambda k: sort_key({"dataset": k[0], "encoder": k[1], "model": k[2], "sampler": k[3],
                                              "dim": k[4], "extras": {"emu": k[5]}})):
        row = dict(zip(("dataset", "encoder", "model", "sampler", "dim", "emu"), key))
        for metric in ("mrr", "hits@1"):
            a = {s: r[metric] for s, r in before[key].items()}
            b = {s: r[metric] for s, r in after[key].items()}
            row[metric] = {"old": describe(list(a.values())), "new": describe(list(b.values())),
                           "difference": paired_difference(a, b)}
        rows.append(row)
    return rows


def _covers_zero(diff) -> str:
    if diff is None or diff["ci95"] is None:
        return "—"
    lo, hi = diff["ci95"]
    return "yes" if lo <= 0 <= hi else "**no**"


def format_comparison(rows: List[Dict[str, Any]], old: str, new: str) -> str:
    """A markdown table: means of both folders, the paired differences, whether 0 is inside."""
    lines = [f"Test MRR and Hits@1 (filtered, realistic ties), old: `{old}`, new: `{new}`; "
             "differences new − old, paired by seed, with 95 % t-intervals.", "",
             "| cell | n | MRR old | MRR new | MRR new − old | 0 inside | Hits@1 new − old | 0 inside |",
             "|---|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        cell = "-".join(str(x) for x in (r["dataset"], r["encoder"] if r["encoder"] != "lookup" else None,
                                         r["model"], r["sampler"], f"d{r['dim']}",
                                         "emu" if r["emu"] else "plain") if x)
        m, h = r["mrr"], r["hits@1"]
        n = m["difference"]["n"] if m["difference"] else 0
        lines.append(f"| {cell} | {n} | {m['old']['mean']:.4f} | {m['new']['mean']:.4f} | "
                     f"{fmt_diff(m['difference'])} | {_covers_zero(m['difference'])} | "
                     f"{fmt_diff(h['difference'])} | {_covers_zero(h['difference'])} |")
    inside = sum(_covers_zero(r["mrr"]["difference"]) == "yes" for r in rows)
    lines += ["", f"The MRR interval contains 0 in {inside} of {len(rows)} cells."]
    return "\n".join(lines) + "\n"


def write_comparison(old: Path, new: Path, out: Path) -> str:
    """``compare.md`` and ``compare.json`` in ``out``; returns the markdown."""
    rows = compare_folders(old, new)
    text = format_comparison(rows, str(old), str(new))
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps({"old": str(old), "new": str(new), "rows": rows}, indent=1) + "\n")
    (out / "compare.md").write_text(text)
    return text
