#!/usr/bin/env python
"""Markdown table of every ``benchmarks/results/quality/*.json`` written by ``quality.py``.

    python benchmarks/quality_table.py      # prints it and writes results/quality/summary.md

It also writes ``summary.rst`` next to it, for the docs (``aggregate.py`` writes the grids' own).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from dgl_emu.utils import atomic_write_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aggregate import rst_table  # noqa: E402  (the sibling script)

RESULTS = Path(__file__).resolve().parent / "results" / "quality"


def table() -> str:
    """One row per quality result: baseline vs EMU test MRR / Hits@1 (realistic, filtered)."""
    rows = ["| run | steps | seeds | baseline MRR | EMU MRR | Δ MRR | baseline Hits@1 | EMU Hits@1 | Δ Hits@1 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for path in sorted(RESULTS.glob("*.json")):
        res = json.loads(path.read_text())
        s = res["summary"]
        steps = sorted({r["steps"] for r in res["runs"]})
        seeds = len({r["seed"] for r in res["runs"]})

        def cell(side, key):
            m = s[side][key]
            return f"{m['mean']:.4f}" + (f" ± {m['std']:.4f}" if seeds > 1 else "")

        d_mrr = s["emu"]["mrr"]["mean"] - s["baseline"]["mrr"]["mean"]
        d_h1 = s["emu"]["hits@1"]["mean"] - s["baseline"]["hits@1"]["mean"]
        rows.append(f"| {res['name']} | {'/'.join(map(str, steps))} | {seeds} | {cell('baseline', 'mrr')} | "
                    f"{cell('emu', 'mrr')} | {d_mrr:+.4f} | {cell('baseline', 'hits@1')} | "
                    f"{cell('emu', 'hits@1')} | {d_h1:+.4f} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    text = table()
    atomic_write_text(RESULTS / "summary.md", text)
    atomic_write_text(RESULTS / "summary.rst", rst_table(text))
    print(text)
