"""The report of the quick pairs of ``python -m benchmarks quality``: one row per result file."""
from __future__ import annotations

import json
from pathlib import Path

from dgl_emu.utils import atomic_write_text

from .report import rst_table

__all__ = ["QUALITY", "quality_table", "write_quality_table"]

#: where ``quality`` writes its result files
QUALITY = Path(__file__).resolve().parents[1] / "results" / "quality"


def quality_table(folder: Path = QUALITY) -> str:
    """One row per quality result in ``folder``: baseline vs EMU test MRR / Hits@1 (realistic, filtered).

    Parameters
    ----------
    folder : Path
        A folder of ``quality`` result files (default ``benchmarks/results/quality``).

    Returns
    -------
    str
        A Markdown table.
    """
    rows = ["| run | steps | seeds | baseline MRR | EMU MRR | Δ MRR | baseline Hits@1 | EMU Hits@1 | Δ Hits@1 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for path in sorted(folder.glob("*.json")):
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


def write_quality_table(folder: Path = QUALITY) -> str:
    """Write :func:`quality_table` to ``summary.md`` and, for the docs, ``summary.rst`` in ``folder``;
    returns the table."""
    text = quality_table(folder)
    atomic_write_text(folder / "summary.md", text)
    atomic_write_text(folder / "summary.rst", rst_table(text))
    return text
