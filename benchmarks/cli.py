"""The command line of the benchmarks: ``python -m benchmarks <subcommand>``, run from the repository root."""
from __future__ import annotations

import sys
from typing import Optional, Sequence

import click

from .commands.aggregate import aggregate
from .commands.compare import compare
from .commands.controls import controls
from .commands.equivalence import equivalence
from .commands.grid import grid
from .commands.quality import quality
from .commands.report import report
from .commands.speed import speed
from .commands.tuned import tuned

__all__ = ["cli", "main"]


@click.group("benchmarks", context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """dgl-emu's benchmarks: grids of runs and their tables, tuned cells, quick EMU/baseline pairs,
    speed measurements and the refactor-equivalence check. Run from the repository root.

    \b
        python -m benchmarks grid benchmarks/grids/smoke.yaml
        python -m benchmarks aggregate benchmarks/results/smoke
        python -m benchmarks speed train-step --data-dir ../shared/datasets
    """


for command in (grid, aggregate, compare, controls, tuned, quality, report, speed, equivalence):
    cli.add_command(command)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``) and exit with its status.

    A missing or malformed dataset ends with one ``Error:`` line (exit status 2), not a traceback.
    """
    from dgl_emu.data import ChecksumError, DataFormatError, DatasetNotFoundError
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="python -m benchmarks")
    except (DatasetNotFoundError, DataFormatError, ChecksumError) as e:  # one line, no traceback
        print(f"Error: {str(e).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
