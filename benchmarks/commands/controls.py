"""``python -m benchmarks controls``: the controls table of a results folder (:mod:`benchmarks.agglib.controls`)."""
from __future__ import annotations

from pathlib import Path

import click

from ..agglib.controls import write_controls

__all__ = ["controls"]


@click.command("controls", short_help="The controls table of a results folder.")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
                default="benchmarks/results/p1-controls")
def controls(folder):
    """The controls table of FOLDER (default benchmarks/results/p1-controls): per dataset and model,
    the baseline, EMU with one and with two draws of negatives and the smoothing-only control, with
    their seed-paired differences (test MRR, 95 % t-intervals).

    Writes controls.md and controls.json into FOLDER and prints the table.
    """
    print(write_controls(folder))
