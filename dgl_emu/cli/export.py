"""``dgl-emu export``: a run's embeddings and id -> label maps, as files other tools read."""
from __future__ import annotations

from pathlib import Path

import click

from ..config import ConfigError
from ..data import ChecksumError, DataFormatError, DatasetNotFoundError
from ..pipeline.trained import EXPORT_FORMATS, TrainedRun, export_run
from ..training import CheckpointError

__all__ = ["export"]


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--output", "-o", type=click.Path(file_okay=False), default=None,
              help="Where the files go (default RUN_DIR/export).")
@click.option("--format", "formats", type=click.Choice(list(EXPORT_FORMATS)), multiple=True,
              help="Table formats (repeat; default npy): npy, tsv (label and values per line), parquet.")
def export(run_dir, output, formats):
    """Write a run's entity and relation embeddings (best checkpoint) with their id -> label maps:
    entities.npy / relations.npy (row i = id i), entities.tsv / relations.tsv (id, label) and
    export.json. Works for every run (dense, sparse, data-parallel, sharded)."""
    out = Path(output) if output else Path(run_dir) / "export"
    try:
        written = export_run(TrainedRun.load(run_dir), out, formats or ("npy",))
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    except (CheckpointError, DataFormatError, DatasetNotFoundError, ChecksumError) as e:
        raise click.ClickException(str(e)) from None
    for path in written:
        click.echo(str(path))
