"""``python -m benchmarks compare``: the same runs in two results folders, paired by seed."""
from __future__ import annotations

from pathlib import Path

import click

from ..agglib.compare import write_comparison

__all__ = ["compare"]


@click.command("compare", short_help="The same runs in two results folders, paired by seed.")
@click.argument("old", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where compare.md and compare.json go (default: NEW).")
def compare(old, new, out):
    """Per cell that both OLD and NEW hold (dataset, encoder, model, sampler, dimension, EMU on or
    off), the seed-paired difference NEW − OLD of test MRR and Hits@1 with its 95 % t-interval,
    and whether the interval contains 0 (e.g. before and after a change of EMU's mask stream)."""
    print(write_comparison(old, new, out or new))
