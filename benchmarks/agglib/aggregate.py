"""A grid's results folder turned into its summary files: tables (Markdown, RST, JSON) and plots."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

from dgl_emu.utils import atomic_write_json, atomic_write_text

from .plots import plot_bars, plot_curves, plot_differences, plot_dimension
from .records import AggregateError, load_results
from .report import format_markdown, format_table, rst_table
from .stats import summarize

__all__ = ["aggregate"]


def aggregate(results_dir, out_dir=None, arm_fields: Sequence[str] = ()) -> Tuple[Dict[str, Any], str]:
    """Read ``results_dir``, write summary.md/.rst/.json and the plots into ``out_dir``.

    Parameters
    ----------
    results_dir : path-like
        A folder of per-run result JSONs (copies of the runs' ``metrics.json``).
    out_dir : path-like, optional
        Where the files go (default: ``results_dir``).
    arm_fields : sequence of str
        Config fields that belong to an arm, not a row (see :func:`.stats.summarize`).

    Returns
    -------
    summary : dict
        The numbers of ``summary.json``, plus ``written``: the files written.
    table : str
        The console table.

    Raises
    ------
    AggregateError
        No result in the folder, two results of the same run, or a bad arm field.
    """
    results_dir = Path(results_dir)
    out_dir = Path(out_dir) if out_dir is not None else results_dir
    records = load_results(results_dir)
    if not records:
        raise AggregateError(f"{results_dir}: no run result JSONs found")
    summary = summarize(records, arm_fields)
    summary["source"] = str(results_dir)
    summary["files"] = len(records)
    markdown = format_markdown(summary, results_dir.name)
    atomic_write_text(out_dir / "summary.md", markdown)
    atomic_write_text(out_dir / "summary.rst", rst_table(markdown))
    atomic_write_json(out_dir / "summary.json", summary)
    written = [out_dir / "summary.md", out_dir / "summary.rst", out_dir / "summary.json",
               plot_bars(summary, out_dir / "mrr_hits1.png")]
    extra_plots = [plot_differences(summary, out_dir / "differences.png"),
                   plot_dimension(summary, out_dir / "dimension.png"),
                   plot_curves(records, out_dir / "curves.png", arm_fields)]
    summary["written"] = [str(w) for w in written + [x for x in extra_plots if x]]
    return summary, format_table(summary)
