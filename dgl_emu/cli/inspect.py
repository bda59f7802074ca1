"""``dgl-emu evaluate``, ``predict`` and ``components``: look at runs and at what is registered."""
from __future__ import annotations

import enum
import json
from pathlib import Path

import click
import torch

from ..config import COMPONENTS, NONE, ConfigError
from ..data import ChecksumError, DataFormatError, DatasetNotFoundError
from ..data.datasets import DATASETS
from ..pipeline import evaluate as evaluate_model, load_run
from ..pipeline.datarecord import DataChanged
from ..training import CheckpointError
from ..typing import Target
from ..utils import atomic_write_json

__all__ = ["format_metrics_table", "evaluate", "predict", "components"]


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
            if not isinstance(by_policy, dict):  # e.g. "protocol"
                continue
            m = by_policy["realistic"]
            lines.append(f"{split:5s}  {side:4s}  {m['mrr']:.4f}  {m['mr']:6.1f}  {m['hits@1']:.4f}  "
                         f"{m['hits@3']:.4f}  {m['hits@10']:7.4f}  {m['count']:5d}")
    return "\n".join(lines)



@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--split", type=click.Choice(["train", "valid", "test"]), default="test", show_default=True)
@click.option("--device", default=None, help="Override the run's device.")
@click.option("--per-relation", is_flag=True, help="Also write per-relation metrics.")
@click.option("--accept-changed-data", is_flag=True,
              help="Evaluate although the data differ from the run's record (read with its recorded id maps).")
def evaluate(run_dir, split, device, per_relation, accept_changed_data):
    """Filtered evaluation of a run's best checkpoint; writes RUN_DIR/eval-SPLIT.json.

    The checkpoint is read as data only, and the data must be those the run trained on."""
    cfg, kg, model, graph = _load(run_dir, device, accept_changed_data)
    if split not in kg.splits:
        raise click.UsageError(f"--split: the run's dataset has no {split!r} split")
    res = evaluate_model(model, kg, split, batch_size=cfg.training.eval_batch_size,
                         device=torch.device(cfg.device), graph=graph)
    out = {"split": split, "metrics": res.metrics()}
    if per_relation:
        out["per_relation"] = res.per_relation(kg.relation_labels)
    click.echo(format_metrics_table({split: out["metrics"]}, splits=(split,)))
    target = Path(run_dir) / f"eval-{split}.json"
    try:
        atomic_write_json(target, out)
    except OSError as e:
        raise click.ClickException(f"cannot write {target} ({e.strerror or e}); the metrics are "
                                   f"printed above") from None


def _load(run_dir, device=None, accept_changed_data=False):
    """``load_run`` with its failures as one-line errors."""
    try:
        return load_run(Path(run_dir), device, accept_changed_data=accept_changed_data)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    except (CheckpointError, DataFormatError, DatasetNotFoundError, ChecksumError, DataChanged) as e:
        raise click.ClickException(str(e)) from None


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--head", help="Head label: predict tails of (HEAD, RELATION, ?).")
@click.option("--tail", help="Tail label: predict heads of (?, RELATION, TAIL).")
@click.option("--relation", required=True, help="Relation label.")
@click.option("--top-k", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--unfiltered", is_flag=True, help="Keep entities that already form known triples.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--accept-changed-data", is_flag=True,
              help="Predict although the data differ from the run's record (read with its recorded id maps).")
def predict(run_dir, head, tail, relation, top_k, unfiltered, as_json, accept_changed_data):
    """Top-k completions of a query, known triples filtered out, with labels and scores."""

    if (head is None) == (tail is None):
        raise click.UsageError("give exactly one of --head and --tail")
    cfg, kg, model, graph = _load(run_dir, accept_changed_data=accept_changed_data)
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



def _shown(value) -> str:
    return repr(value.value if isinstance(value, enum.Enum) else value)


@click.command()
@click.option("--options", "show_options", is_flag=True, help="Also list each component's options and defaults.")
def components(show_options):
    """List the registered components per configuration section (and, with --options, their options)."""
    for section, spec in COMPONENTS.items():
        click.echo(f"{section}: {', '.join(spec.names())}")
        if not show_options:
            continue
        for name in spec.names():
            if name == NONE:
                continue
            opts = spec.options(name)
            shown = {k: spec.defaults.get(k, o.default) for k, o in opts.items()}
            text = ", ".join(f"{k}={'(required)' if v is o.default and o.required else _shown(v)}"
                             for (k, v), o in zip(shown.items(), opts.values()))
            click.echo(f"  {name}: {text or '(no options)'}")
    click.echo(f"datasets: {', '.join(DATASETS.names())}")
