"""The ``dgl-emu`` command line: ``run``, ``evaluate``, ``predict``, ``datasets``, ``components``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .config import ConfigError, LossKind, MutationKind, RunConfig, SamplerKind, load_config
from .data.datasets import DATASETS, SYNTHETIC

__all__ = ["main", "format_metrics_table"]


def format_metrics_table(metrics: dict, splits=("valid", "test")) -> str:
    """A text table of realistic MR, MRR and Hits@k per split and side.

    Examples
    --------
    >>> m = {"both": {"realistic": {"mr": 2.0, "mrr": 0.5, "hits@1": 0.25, "hits@3": 0.5,
    ...       "hits@10": 1.0, "count": 4}}}
    >>> print(format_metrics_table({"test": m}))
    split  side     MRR      MR  Hits@1  Hits@3  Hits@10      n
    test   both  0.5000     2.0  0.2500  0.5000   1.0000      4
    """
    lines = [f"{'split':5s}  {'side':4s}  {'MRR':>6s}  {'MR':>6s}  {'Hits@1':>6s}  {'Hits@3':>6s}  "
             f"{'Hits@10':>7s}  {'n':>5s}"]
    for split in splits:
        for side, by_policy in metrics.get(split, {}).items():
            m = by_policy["realistic"]
            lines.append(f"{split:5s}  {side:4s}  {m['mrr']:.4f}  {m['mr']:6.1f}  {m['hits@1']:.4f}  "
                         f"{m['hits@3']:.4f}  {m['hits@10']:7.4f}  {m['count']:5d}")
    return "\n".join(lines)


def _choice(values):
    return click.Choice(list(values), case_sensitive=False)


def _model_names():
    from .nn.interactions import INTERACTIONS
    return INTERACTIONS.names()


def _encoder_names():
    from .nn.encoders import ENCODERS
    return ENCODERS.names()


#: run options: (config field, click option declaration, click keyword arguments)
_RUN_OPTIONS = [
    ("dataset", "--dataset", dict(help=f"Registered dataset or '{SYNTHETIC}' (generated, no files).")),
    ("data_dir", "--data-dir", dict(type=click.Path(file_okay=False), help="Root folder holding NAME/ dataset folders.")),
    ("train", "--train", dict(type=click.Path(dir_okay=False), help="Labelled TSV training file (instead of --dataset).")),
    ("valid", "--valid", dict(type=click.Path(dir_okay=False), help="Labelled TSV validation file.")),
    ("test", "--test", dict(type=click.Path(dir_okay=False), help="Labelled TSV test file.")),
    ("drop_unseen", "--drop-unseen/--keep-unseen", dict(default=None, help="Drop valid/test triples with entities unseen in training (default: keep).")),
    ("model", "--model", dict(type=_choice(_model_names()), help="Interaction (decoder); default rotate, or distmult with a GNN encoder.")),
    ("encoder", "--encoder", dict(type=_choice(_encoder_names()), help="Encoder: lookup tables or a GNN.")),
    ("dim", "--dim", dict(type=int, help="Embedding dimension d (complex models: 2d reals).")),
    ("gamma", "--gamma", dict(type=float, help="Margin γ of TransE/RotatE and the init range.")),
    ("p_norm", "--p-norm", dict(type=int, help="TransE norm: 1 or 2.")),
    ("encoder_layers", "--encoder-layers", dict(type=int, help="GNN layers.")),
    ("encoder_dropout", "--encoder-dropout", dict(type=float, help="GNN dropout in [0, 1].")),
    ("num_bases", "--num-bases", dict(type=int, help="R-GCN bases (basis decomposition).")),
    ("decomposition", "--decomposition", dict(type=_choice(["basis", "bdd"]), help="R-GCN weight decomposition.")),
    ("composition", "--composition", dict(type=_choice(["sub", "mult", "corr"]), help="CompGCN composition operator.")),
    ("fanouts", "--fanouts", dict(help="Mini-batch neighbour sampling: neighbours per layer, e.g. 10,10 (-1 = all).")),
    ("sampler", "--sampler", dict(type=_choice(e.value for e in SamplerKind), help="Negative sampler.")),
    ("num_negatives", "--negatives", dict(type=int, help="Negatives K per positive.")),
    ("sans_k", "--sans-k", dict(type=int, help="SANS hops k.")),
    ("sans_walks", "--sans-walks", dict(type=int, help="SANS random walks per entity.")),
    ("filtered", "--filtered/--unfiltered", dict(default=None, help="Never sample known training triples.")),
    ("emu", "--emu/--no-emu", dict(default=None, help="Train with EMU (default) or plain negatives.")),
    ("mutation", "--mutation", dict(type=_choice(e.value for e in MutationKind), help="EMU variant.")),
    ("keep_prob", "--keep-prob", dict(type=float, help="EMU: probability of keeping a negative coordinate (0.39).")),
    ("negative_label", "--negative-label", dict(type=float, help="EMU: soft label of mutated negatives (0.53).")),
    ("plain_weight", "--plain-weight", dict(type=float, help="EMU: weight of the plain loss (0.11).")),
    ("loss", "--loss", dict(type=_choice(e.value for e in LossKind), help="Plain loss.")),
    ("adversarial_temperature", "--adversarial-temperature", dict(type=float, help="Self-adversarial weighting (softplus loss).")),
    ("margin", "--margin", dict(type=float, help="Margin of the margin-ranking loss.")),
    ("regularizer_weight", "--regularizer-weight", dict(type=float, help="Lp (N3) regularisation weight.")),
    ("regularizer_p", "--regularizer-p", dict(type=float, help="Lp regulariser order (3 = N3).")),
    ("steps", "--steps", dict(type=int, help="Training steps.")),
    ("batch_size", "--batch-size", dict(type=int, help="Positives per step.")),
    ("optimizer", "--optimizer", dict(type=_choice(["adagrad", "adam", "sgd"]), help="Optimiser (default adagrad for lookup tables, adam for GNN encoders).")),
    ("lr", "--lr", dict(type=float, help="Learning rate (default 0.1 for lookup tables, 0.01 for GNN encoders).")),
    ("switch_to_adam", "--switch-to-adam/--no-switch", dict(default=None, help="Published schedule: Adam at lr/10 after half the steps.")),
    ("eval_every", "--eval-every", dict(type=int, help="Steps between validations/checkpoints.")),
    ("patience", "--patience", dict(type=int, help="Early stopping after this many validations without improvement.")),
    ("eval_batch_size", "--eval-batch-size", dict(type=int, help="Queries per evaluation batch.")),
    ("device", "--device", dict(help="cpu, cuda, cuda:1, ...")),
    ("seed", "--seed", dict(type=int, help="One seed for initialisation, data order, sampling and EMU.")),
    ("output", "--output", dict(type=click.Path(file_okay=False), help="Run directory (default runs/<name>).")),
    ("progress", "--progress/--no-progress", dict(default=None, help="Progress bars.")),
]


def _option_error(err: ConfigError, ctx) -> click.UsageError:
    """A usage error whose message names the command-line option instead of the config field."""
    msg = str(err)
    for field_name, decl, _ in _RUN_OPTIONS:
        if msg.startswith(f"{field_name}:"):
            flag = decl.split("/")[0]
            msg = f"{flag}{msg[len(field_name):]}"
            break
    return click.UsageError(msg, ctx)


def _run_options(f):
    for field_name, decl, kwargs in reversed(_RUN_OPTIONS):
        f = click.option(decl, field_name, **kwargs)(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dgl-emu")
def main():
    """dgl-emu: Embedding MUtation (EMU) for knowledge-graph link prediction on DGL."""


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True),
              help="YAML file of options; command-line options override it.")
@click.option("--fresh", is_flag=True, help="Start over even if the run directory holds a checkpoint.")
@_run_options
@click.pass_context
def run(ctx, config_file, fresh, **options):
    """Train (with EMU by default), validate, keep the best checkpoint and report test metrics.

    With no arguments it trains RotatE with EMU on a small generated KG in well under a minute.
    """
    given = {k: v for k, v in options.items()
             if ctx.get_parameter_source(k) is click.core.ParameterSource.COMMANDLINE}
    try:
        cfg = load_config(config_file, **given) if config_file else RunConfig(**given).validate()
    except ConfigError as e:
        raise _option_error(e, ctx) from None
    from .data import DataFormatError, DatasetNotFoundError
    from .pipeline import run as run_pipeline
    try:
        result = run_pipeline(cfg, resume=not fresh)
    except ConfigError as e:
        raise _option_error(e, ctx) from None
    except (DataFormatError, DatasetNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"\nrun directory: {result.run_dir}")
    click.echo(f"best validation MRR {result.metrics['best_valid_mrr']} at step {result.metrics['best_step']}; "
               f"{result.metrics['train_seconds']:.1f} s")
    click.echo(format_metrics_table(result.metrics))


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--split", type=_choice(["train", "valid", "test"]), default="test", show_default=True)
@click.option("--device", default=None, help="Override the run's device.")
@click.option("--per-relation", is_flag=True, help="Also write per-relation metrics.")
def evaluate(run_dir, split, device, per_relation):
    """Filtered evaluation of a run's best checkpoint; writes RUN_DIR/eval-SPLIT.json."""
    from .pipeline import evaluate as evaluate_model, load_run
    from .utils import atomic_write_json
    try:
        cfg, kg, model, graph = load_run(Path(run_dir), device)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    if split not in kg.splits:
        raise click.UsageError(f"--split: the run's dataset has no {split!r} split")
    import torch
    res = evaluate_model(model, kg, split, batch_size=cfg.eval_batch_size, device=torch.device(cfg.device),
                         graph=graph)
    out = {"split": split, "metrics": res.metrics()}
    if per_relation:
        out["per_relation"] = res.per_relation(kg.relation_labels)
    atomic_write_json(Path(run_dir) / f"eval-{split}.json", out)
    click.echo(format_metrics_table({split: out["metrics"]}, splits=(split,)))


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--head", help="Head label: predict tails of (HEAD, RELATION, ?).")
@click.option("--tail", help="Tail label: predict heads of (?, RELATION, TAIL).")
@click.option("--relation", required=True, help="Relation label.")
@click.option("--top-k", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--unfiltered", is_flag=True, help="Keep entities that already form known triples.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def predict(run_dir, head, tail, relation, top_k, unfiltered, as_json):
    """Top-k completions of a query, known triples filtered out, with labels and scores."""
    import torch

    from .pipeline import load_run
    from .typing import Target
    if (head is None) == (tail is None):
        raise click.UsageError("give exactly one of --head and --tail")
    try:
        cfg, kg, model, graph = load_run(Path(run_dir))
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    target = Target.TAIL if head is not None else Target.HEAD
    anchor = head if head is not None else tail
    for label, table, opt in ((anchor, kg.entity_to_id, "--head" if head else "--tail"),
                              (relation, kg.relation_to_id, "--relation")):
        if label not in table:
            raise click.BadParameter(f"unknown label {label!r} (the dataset has {len(table)}; "
                                     f"e.g. {', '.join(list(table)[:3])})", param_hint=opt)
    q = torch.zeros(1, 3, dtype=torch.long)
    q[0, target.other.column] = kg.entity_to_id[anchor]
    q[0, 1] = kg.relation_to_id[relation]
    with torch.no_grad():
        scores = model.scorer(graph)(q.to(torch.device(cfg.device)), target).cpu()[0]
    if not unfiltered:
        _, cols = kg.filter_index().known(q, target)
        scores[cols] = float("-inf")
    k = min(top_k, int(torch.isfinite(scores).sum()))
    top = torch.topk(scores, k)
    labels = kg.entity_labels
    rows = [{"rank": i + 1, "entity": labels[j], "score": float(s)}
            for i, (s, j) in enumerate(zip(top.values.tolist(), top.indices.tolist()))]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    query = f"({anchor}, {relation}, ?)" if head is not None else f"(?, {relation}, {anchor})"
    click.echo(f"top {k} for {query}{'' if unfiltered else ', known triples filtered'}:")
    for r in rows:
        click.echo(f"{r['rank']:4d}  {r['score']:10.4f}  {r['entity']}")


@main.group(invoke_without_command=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Root holding NAME/ folders (else $DGL_EMU_DATA, else the user cache).")
@click.pass_context
def datasets(ctx, data_dir):
    """List registered datasets with their counts and whether their files are present."""
    ctx.obj = {"data_dir": data_dir}
    if ctx.invoked_subcommand is not None:
        return
    from .data.datasets import data_root, is_present
    click.echo(f"data root: {data_root(data_dir)}")
    click.echo(f"{'name':10s}  {'entities':>8s}  {'relations':>9s}  {'train':>7s}  {'valid':>6s}  "
               f"{'test':>6s}  present")
    for name in DATASETS.names():
        c = DATASETS.get(name).counts
        click.echo(f"{name:10s}  {c['entities']:8d}  {c['relations']:9d}  {c['train']:7d}  "
                   f"{c['valid']:6d}  {c['test']:6d}  {'yes' if is_present(name, data_dir) else 'no'}")
    click.echo(f"{SYNTHETIC:10s}  generated from a seed, no files (the default of 'dgl-emu run')")


def _dataset_info(name: str):
    try:
        return DATASETS.get(name)
    except KeyError as e:
        raise click.BadParameter(e.args[0], param_hint="NAME") from None


@datasets.command()
@click.argument("name")
@click.pass_context
def info(ctx, name):
    """Metadata of one dataset: counts, citation, source, checksums, where it is looked for."""
    from .data.datasets import data_root
    d = _dataset_info(name)
    click.echo(f"{d.title} ({d.name})")
    click.echo(f"  counts:   {json.dumps(d.counts)}")
    click.echo(f"  citation: {d.citation}")
    click.echo(f"  homepage: {d.homepage}")
    click.echo(f"  source:   {d.source.get('archive') or d.source.get('base_url')}")
    if d.note:
        click.echo(f"  note:     {d.note}")
    click.echo(f"  folder:   {data_root(ctx.obj['data_dir']) / d.name}")
    for split, files in d.files.items():
        for fname, sums in files.items():
            click.echo(f"  {split:5s} {fname:14s} sha256 {' or '.join(sums)}")


@datasets.command()
@click.argument("name")
@click.option("--mirror", default=None, help="Base URL of a mirror laid out as MIRROR/NAME/train.txt.")
@click.pass_context
def download(ctx, name, mirror):
    """Download a dataset from its canonical source (or a mirror) and verify its checksums."""
    from .data.datasets import ChecksumError, download as fetch
    d = _dataset_info(name)
    try:
        path = fetch(d.name, ctx.obj["data_dir"], mirror=mirror)
    except ChecksumError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"download of {d.name} failed ({e}); without internet, put the files "
                                   f"in the folder shown by 'dgl-emu datasets info {d.name}'") from None
    click.echo(f"{d.name}: downloaded and verified in {path}")


@datasets.command()
@click.argument("name")
@click.pass_context
def verify(ctx, name):
    """Check a dataset's files against the registered sha256 checksums."""
    from .data.datasets import ChecksumError, DatasetNotFoundError, verify as check
    d = _dataset_info(name)
    try:
        files = check(d.name, ctx.obj["data_dir"])
    except (ChecksumError, DatasetNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{d.name}: {', '.join(files.values())} OK")


@main.command()
def components():
    """List the registered components (interactions, encoders, samplers, losses, datasets)."""
    from .losses import LOSSES
    from .nn.encoders import ENCODERS
    from .nn.interactions import INTERACTIONS
    from .sampling import SAMPLERS
    for title, reg in (("interactions", INTERACTIONS), ("encoders", ENCODERS), ("samplers", SAMPLERS),
                       ("losses", LOSSES), ("datasets", DATASETS)):
        click.echo(f"{title}: {', '.join(reg.names())}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
