"""``dgl-emu partition``: cut a dataset's training graph into DGL partitions for sharded training."""
from __future__ import annotations

from pathlib import Path

import click

from ..config import ConfigError, RunConfig
from ..data import ChecksumError, DataFormatError, DatasetNotFoundError
from ..pipeline import load_graph
from ..sharded.partition import PartitionMethod, partition_kg

__all__ = ["partition"]


@click.command()
@click.option("--dataset", default="synthetic", show_default=True, help="Registered dataset or 'synthetic'.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Root folder holding NAME/ dataset folders.")
@click.option("--train", type=click.Path(dir_okay=False, exists=True), help="Labelled TSV training file.")
@click.option("--valid", type=click.Path(dir_okay=False, exists=True), help="Labelled TSV validation file.")
@click.option("--test", type=click.Path(dir_okay=False, exists=True), help="Labelled TSV test file.")
@click.option("--num-parts", type=click.IntRange(min=1), required=True, help="Partitions: one per machine.")
@click.option("--method", type=click.Choice(["metis", "random"]), default="metis", show_default=True,
              help="METIS (fewer triples across partitions) or random assignment of entities.")
@click.option("--output", type=click.Path(file_okay=False), required=True, help="Folder for the partitions.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated KG ('synthetic').")
def partition(dataset, data_dir, train, valid, test, num_parts, method, output, seed):
    """Partition a knowledge graph's entities and training triples for ``dgl-emu run --part-config``.

    Writes DGL's partitions and ``OUTPUT/<name>.json`` (the ``--part-config`` of ``dgl-emu run``);
    the relation table is not partitioned. Entities are renumbered per partition; the map back to
    the dataset's numbering is kept, so checkpoints and metrics use the dataset's ids.
    """
    options = {"dataset": dataset, "data_dir": data_dir, "train": train, "valid": valid, "test": test, "seed": seed}
    try:
        cfg = RunConfig.from_dict({k: v for k, v in options.items() if v is not None})
        kg = load_graph(cfg)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    except (DataFormatError, DatasetNotFoundError, ChecksumError) as e:
        raise click.ClickException(str(e)) from None
    name = str(Path(train).resolve()) if train else cfg.data.dataset
    try:
        path = partition_kg(kg, num_parts, output, method=PartitionMethod(method), dataset=str(name))
    except ValueError as e:
        raise click.UsageError(str(e).replace("num_parts:", "--num-parts:", 1)) from None
    click.echo(f"{kg.num_entities} entities, {len(kg.splits['train'])} training triples -> {num_parts} "
               f"{method} partition(s)")
    click.echo(f"part config: {path}")
