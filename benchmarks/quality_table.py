#!/usr/bin/env python
"""Markdown table of every ``benchmarks/results/quality/*.json`` written by ``quality.py``.

    python benchmarks/quality_table.py      # prints it and writes results/quality/summary.md

It also writes ``summary.rst`` next to every ``results/*/summary.md`` (included by the docs).
"""
from __future__ import annotations

import json
from pathlib import Path

from dgl_emu.utils import atomic_write_text

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


def rst_table(markdown: str) -> str:
    """Markdown tables as RST ``csv-table`` directives (included by docs/benchmarks.rst).

    Every block of consecutive ``|`` lines becomes its own table; a paragraph between two tables
    (e.g. the caption of ``aggregate.py``'s dimension table) is kept; headings and the text
    before the first table are dropped (the docs page says it in its own words).
    """
    out, table, seen_table = [], [], False

    def flush():
        if table:
            out.extend([".. csv-table::", "   :header-rows: 1", ""])
            out.extend("   " + ", ".join('"' + c.replace('"', '""') + '"' for c in row) for row in table)
            out.append("")
            table.clear()

    for line in markdown.strip().splitlines():
        if line.startswith("|"):
            seen_table = True
            if not line.startswith("|---"):
                table.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        flush()
        if seen_table and line.strip() and not line.startswith("#"):
            out.extend([line.strip(), ""])
    flush()
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    text = table()
    atomic_write_text(RESULTS / "summary.md", text)
    atomic_write_text(RESULTS / "summary.rst", rst_table(text))
    for md in RESULTS.parent.glob("*/summary.md"):  # grid summaries from aggregate.py, for the docs
        atomic_write_text(md.with_suffix(".rst"), rst_table(md.read_text()))
    print(text)
