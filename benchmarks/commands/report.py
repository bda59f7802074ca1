"""``python -m benchmarks report``: the table of the quick pairs of ``quality`` (:mod:`benchmarks.agglib.quality`)."""
from __future__ import annotations

import click

from ..agglib.quality import QUALITY, write_quality_table

__all__ = ["report"]


@click.command("report", short_help="The table of the quality pairs.")
def report():
    """Markdown table of every benchmarks/results/quality/*.json written by `quality`: baseline vs
    EMU test MRR and Hits@1 per pair.

    Prints it and writes results/quality/summary.md, and summary.rst next to it for the docs
    (`aggregate` writes the grids' own).
    """
    print(write_quality_table(QUALITY))
