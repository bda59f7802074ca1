"""``python -m benchmarks speed``: speed benchmarks of dgl-emu. Each subcommand prints one JSON object
as its last line and saves it under benchmarks/results/ (atomically)::

    python -m benchmarks speed eval --dataset fb15k-237 --data-dir ../shared/datasets
    python -m benchmarks speed train-step --data-dir ../shared/datasets
    python -m benchmarks speed sans --data-dir ../shared/datasets
    python -m benchmarks speed scale --data-dir ../shared/datasets
    python -m benchmarks speed shard-eval       (root: two machines in network namespaces)
    python -m benchmarks speed ingest --triples 10000000 --entities 5000000
    python -m benchmarks speed cli-memory --entities 5000000
"""
from __future__ import annotations

import time
from pathlib import Path

import click
import torch

from dgl_emu.cli.options import parse_set
from dgl_emu.config import RunConfig, load_config
from dgl_emu.data import load_dataset
from dgl_emu.evaluation import RankBasedEvaluator
from dgl_emu.pipeline import build_batches, build_model, build_objective, build_regime
from dgl_emu.training import OptimizerSchedule, Trainer
from dgl_emu.typing import Target
from dgl_emu.utils import tune_cpu_allocator

from ..speedlib.command import scale
from ..speedlib.shardeval import shard_eval
from ..speedlib.ingest_command import ingest
from ..speedlib.climemory import cli_memory
from ..speedlib.report import emit, ratio, secs

__all__ = ["speed"]


@click.group("speed", short_help="Speed benchmarks (one JSON each).")
def speed():
    """Speed benchmarks of dgl-emu: each subcommand prints one JSON object as its last line and
    saves it as benchmarks/results/speed-<name>.json (unless --no-save)."""
    tune_cpu_allocator()


@speed.command("eval")
@click.option("--dataset", default="fb15k-237", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--dim", default=100, show_default=True)
@click.option("--batch-size", default=1000, show_default=True)
@click.option("--baseline-triples", default=100, show_default=True,
              help="Triples ranked by a per-triple Python loop, extrapolated to the split (0: skip).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--save/--no-save", default=True)
def eval_cmd(dataset, data_dir, dim, batch_size, baseline_triples, device, save):
    """Filtered evaluation of a random DistMult on the test split, both sides."""
    kg = load_dataset(dataset, data_dir)
    cfg = RunConfig(dataset=dataset, model="distmult", dim=dim, device=device).validate()
    model = build_model(cfg, kg).to(device).eval()
    test = kg.splits["test"]
    index = kg.filter_index()
    evaluator = RankBasedEvaluator(index, batch_size=batch_size)
    start = time.perf_counter()
    result = evaluator.evaluate(model.scorer(), test, device=torch.device(device))
    seconds = time.perf_counter() - start
    out = {"dataset": dataset, "model": "distmult", "dim": dim, "device": device,
           "seconds": secs(seconds), "ranks": 2 * len(test),
           "mrr_random_model": result.get("mrr")}
    if baseline_triples:
        out.update(_loop_baseline(model, kg, test[:baseline_triples], len(test), seconds))
    emit("eval", out, save)


def _loop_baseline(model, kg, triples, total, seconds) -> dict:
    """A per-triple loop (one query, a Python set of known answers) timed on a few triples."""
    known = {tuple(t) for t in torch.cat(list(kg.splits.values())).tolist()}
    reps = model.encode()
    start = time.perf_counter()
    with torch.no_grad():
        for h, r, t in triples.tolist():
            for target in (Target.HEAD, Target.TAIL):
                scores = model.score_all(reps, torch.tensor([[h, r, t]]), target)[0]
                true = t if target is Target.TAIL else h
                s_true = scores[true].item()
                rank = 1
                for e, s in enumerate(scores.tolist()):
                    cand = (h, r, e) if target is Target.TAIL else (e, r, t)
                    if e != true and cand not in known and s > s_true:
                        rank += 1
    per_triple = (time.perf_counter() - start) / len(triples)
    est = per_triple * total
    return {"baseline": "per-triple Python loop", "baseline_triples_timed": len(triples),
            "baseline_seconds_extrapolated": secs(est),
            "speedup_vs_baseline": ratio(est, seconds, 1)}


@speed.command("train-step")
@click.option("--dataset", default="fb15k-237", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--model", default="distmult", show_default=True)
@click.option("--dim", default=100, show_default=True)
@click.option("--batch-size", default=1000, show_default=True)
@click.option("--negatives", default=256, show_default=True)
@click.option("--steps", default=20, show_default=True, help="Timed steps per variant.")
@click.option("--warmup", default=3, show_default=True)
@click.option("--chunk-size", type=int, default=None, help="Shared negatives: chunks of this many positives share "
                                                            "one draw (sampler.chunk_size).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--save/--no-save", default=True)
def train_step(dataset, data_dir, model, dim, batch_size, negatives, steps, warmup, chunk_size, device, save):
    """Seconds per training step with and without EMU, measured in the same run (alternating)."""
    kg = load_dataset(dataset, data_dir)
    trainers = {}
    for emu in (False, True):
        cfg = RunConfig(dataset=dataset, model=model, dim=dim, batch_size=batch_size,
                        num_negatives=negatives, emu=emu, device=device, progress=False,
                        **({"chunk_size": chunk_size} if chunk_size else {})).validate()
        m = build_model(cfg, kg).to(device)
        trainers[emu] = Trainer(build_objective(cfg, m), build_regime(cfg, kg), kg.splits["train"],
                                num_steps=warmup + steps, batch_size=batch_size,
                                optimizer=OptimizerSchedule("adagrad", 0.1),
                                device=torch.device(device), progress=False)
    times = {False: [], True: []}
    for i in range(warmup + steps):  # interleave, so both variants see the same machine state
        for emu, tr in trainers.items():
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            tr.train_step()  # the next batch (alternating sides) and one optimiser step
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i >= warmup:
                times[emu].append(time.perf_counter() - start)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    mean = {k: sum(v) / len(v) for k, v in times.items()}
    # DistMult (the default) writes speed-train-step.json, other models speed-train-step-<model>.json;
    # shared negatives add -chunk<size>
    name = ("train-step" if model == "distmult" else f"train-step-{model}") + (f"-chunk{chunk_size}" if chunk_size else "")
    emit(name, {
        "dataset": dataset, "model": model, "dim": dim, "batch_size": batch_size,
        "negatives": negatives, "sampler": "uniform", "chunk_size": chunk_size, "device": device, "timed_steps": steps,
        "seconds_per_step_emu": secs(mean[True]), "seconds_per_step_plain": secs(mean[False]),
        "median_seconds_per_step_emu": secs(med[True]),
        "median_seconds_per_step_plain": secs(med[False]),
        "emu_overhead_ratio": ratio(mean[True], mean[False], 2)}, save)


@speed.command("pair")
@click.argument("baseline_config", type=click.Path(dir_okay=False, exists=True))
@click.option("--emu-set", "emu_sets", multiple=True, metavar="KEY=VALUE",
              help="Options of the EMU arm on top of BASELINE_CONFIG (repeat), e.g. emu=true.")
@click.option("--dataset", default="fb15k-237", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--steps", default=30, show_default=True, help="Timed steps per arm.")
@click.option("--warmup", default=3, show_default=True)
@click.option("--emu-steps", type=int, default=None, help="Report the baseline's steps in the time of this many "
                                                           "EMU steps.")
@click.option("--save/--no-save", default=False)
def pair(baseline_config, emu_sets, dataset, data_dir, steps, warmup, emu_steps, save):
    """Seconds per training step of a baseline configuration and of its EMU arm, measured in
    one process, alternating steps (so both see the same machine state), with the baseline's
    steps that fit the time of --emu-steps EMU steps: equal-time budgets in steps."""
    kg = load_dataset(dataset, data_dir)
    base = load_config(baseline_config, {"dataset": dataset, "progress": False})
    arms = {"baseline": base, "emu": load_config(baseline_config, {"dataset": dataset, "progress": False},
                                                   parse_set(emu_sets))}
    trainers = {}
    for arm, cfg in arms.items():
        m = build_model(cfg, kg)
        trainers[arm] = Trainer(build_objective(cfg, m), build_regime(cfg, kg), kg.splits["train"],
                                num_steps=warmup + steps, batch_size=cfg.training.batch_size,
                                optimizer=OptimizerSchedule(cfg.optimizer.name, cfg.get("optimizer.lr")),
                                progress=False)
    times = {arm: [] for arm in arms}
    for i in range(warmup + steps):
        for arm, tr in trainers.items():
            start = time.perf_counter()
            tr.train_step()
            if i >= warmup:
                times[arm].append(time.perf_counter() - start)
    mean = {arm: sum(v) / len(v) for arm, v in times.items()}
    out = {"dataset": dataset, "baseline_config": str(baseline_config), "emu_set": list(emu_sets),
           "timed_steps": steps, "seconds_per_step_baseline": secs(mean["baseline"]),
           "seconds_per_step_emu": secs(mean["emu"]), "emu_over_baseline": ratio(mean["emu"], mean["baseline"], 3)}
    if emu_steps is not None:
        out["emu_steps"] = emu_steps
        out["baseline_steps_in_emu_time"] = int(round(emu_steps * mean["emu"] / mean["baseline"]))
    emit(f"pair-{Path(baseline_config).stem}-{dataset}", out, save)


@speed.command("fused")
@click.option("--batch-size", default=1000, show_default=True)
@click.option("--negatives", default=256, show_default=True)
@click.option("--dim", default=100, show_default=True)
@click.option("--repeats", default=5, show_default=True)
@click.option("--inductor/--no-inductor", default=True, help="Also time torch.compile of the formed path "
                                                              "(its compilation is timed apart).")
@click.option("--device", default="cpu", show_default=True,
              help="Where to time it; the C++ kernel is timed on the CPU only.")
@click.option("--save/--no-save", default=True)
def fused(batch_size, negatives, dim, repeats, inductor, device, save):
    """EMU's mutated scores (DistMult's dot product) and their backward, three engines on one
    (B, K, d) batch: the C++ kernel (dgl_emu.nn.fused), the formed path in eager torch (the
    mutated tensor from the counter mask), and the torch.compile engine that CUDA uses
    (dgl_emu.nn.fused_compiled), here compiled by Inductor to C++."""
    from dgl_emu.counter_rng import draw_key
    from dgl_emu.nn.fused import FusedKind, fused_scores, kernel_status, kernels, reference_scores
    g = torch.Generator().manual_seed(0)
    B, K, d = batch_size, negatives, dim
    device = torch.device(device)
    q, p = (torch.randn(B, d, generator=g).to(device).requires_grad_() for _ in range(2))
    n = torch.randn(B, K, d, generator=g).to(device).requires_grad_()
    key = draw_key(0, 0)

    def formed():
        return reference_scores(q, p, n, FusedKind.DOT, key, 0, 0.39)

    engines = {"eager": formed}
    out = {"batch_size": B, "negatives": K, "dim": d, "device": device.type}
    if device.type == "cpu":
        kernels()
        engines["kernel"] = lambda: fused_scores(q, p, n, FusedKind.DOT, key, 0, 0.39)
        out["kernels"] = kernel_status()
    if inductor:  # the CUDA engine (dgl_emu.nn.fused_compiled), here compiled to C++ by Inductor
        from dgl_emu.nn.fused_compiled import compiled_scores

        def compiled():
            return compiled_scores(q, p, n, FusedKind.DOT, key, 0, 0.39)

        start = time.perf_counter()
        e, pl = compiled()
        (e.sum() + pl.sum()).backward()
        out["inductor_compile_seconds"] = secs(time.perf_counter() - start)
        engines["inductor"] = compiled
    for name, run in engines.items():
        times = []
        for _ in range(repeats):
            q.grad = p.grad = n.grad = None
            start = time.perf_counter()
            e, pl = run()
            (e.sum() + pl.sum()).backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
        out[f"seconds_{name}"] = secs(sorted(times)[len(times) // 2])
    emit("fused", out, save)


@speed.command("encoder-epoch")
@click.option("--dataset", default="fb15k-237", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--encoder", "encoders", multiple=True, default=("rgcn", "compgcn"), show_default=True)
@click.option("--dim", default=100, show_default=True)
@click.option("--layers", default=2, show_default=True)
@click.option("--batch-size", default=10000, show_default=True)
@click.option("--negatives", default=64, show_default=True)
@click.option("--steps", default=3, show_default=True, help="Timed steps per variant; the epoch time is extrapolated.")
@click.option("--reference/--no-reference", default=True, show_default=True,
              help="Also time the per-edge reference of each encoder (DGL's RelGraphConv for R-GCN).")
@click.option("--emu/--no-emu", default=True, show_default=True)
@click.option("--save/--no-save", default=True)
def encoder_epoch(dataset, data_dir, encoders, dim, layers, batch_size, negatives, steps, reference, emu, save):
    """Full-graph training step of GNN encoders, and of their per-edge references, in one run.

    R-GCN: dgl-emu's RelationalGraphConv against dgl.nn.RelGraphConv (same parameters, same
    initial weights). CompGCN: the per-(node, relation) aggregation against one message per edge.
    Steps of the variants are interleaved, so they share the machine's state.
    """
    import functools

    import dgl
    kg = load_dataset(dataset, data_dir)
    graph = kg.graph("train")
    out = {"dataset": dataset, "dim": dim, "layers": layers, "batch_size": batch_size,
           "negatives": negatives, "emu": emu, "timed_steps": steps, "num_bases": None,
           "steps_per_epoch": -(-len(kg.splits["train"]) // batch_size)}
    trainers = {}
    for enc in encoders:
        cfg = RunConfig(dataset=dataset, model="distmult", encoder=enc, dim=dim, encoder_layers=layers,
                        batch_size=batch_size, num_negatives=negatives, emu=emu, progress=False).validate()
        variants = {enc: None}
        if reference:
            variants[f"{enc}_reference"] = enc
        for name, ref in variants.items():
            m = build_model(cfg, kg)
            if ref == "rgcn":  # the same encoder on DGL's layer, with the same initial weights
                from dgl_emu.nn.encoders import RGCNEncoder
                twin = RGCNEncoder(kg.num_entities, kg.num_relations, m.interaction, num_layers=layers,
                                   conv=dgl.nn.RelGraphConv)
                twin.load_state_dict(m.encoder.state_dict())
                m.encoder = twin
            elif ref == "compgcn":  # an unregistered composition: one message per edge
                for layer in m.encoder.layers:
                    layer.composition = functools.partial(layer.composition)
            if enc == "rgcn":
                out["num_bases"] = m.encoder.layers[0].linear_r.num_bases
            trainers[name] = Trainer(build_objective(cfg, m), build_regime(cfg, kg), kg.splits["train"],
                                     num_steps=steps + 1, batch_size=batch_size,
                                     batches=build_batches(cfg, graph),
                                     optimizer=OptimizerSchedule("adam", 0.01), progress=False)
    times = {name: [] for name in trainers}
    for i in range(steps + 1):  # the first step of each is a warm-up
        for name, tr in trainers.items():
            start = time.perf_counter()
            tr.train_step()
            if i:
                times[name].append(time.perf_counter() - start)
    for name, t in times.items():
        out[f"{name}_seconds_per_step"] = secs(sum(t) / len(t))
        out[f"{name}_median_seconds_per_step"] = secs(sorted(t)[len(t) // 2])
        out[f"{name}_seconds_per_epoch"] = round(sum(t) / len(t) * out["steps_per_epoch"], 3)
    for enc in encoders:
        if f"{enc}_reference" in times:
            out[f"{enc}_speedup_vs_reference"] = ratio(sum(times[f"{enc}_reference"]), sum(times[enc]), 1)
    emit("encoder-epoch", out, save)


@speed.command("pykeen")
@click.option("--dataset", default="fb15k-237", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--train-triples", default=20000, show_default=True,
              help="Training triples per epoch (batch 1000: this many / 1000 steps are timed).")
@click.option("--eval-triples", default=2000, show_default=True, help="Test triples ranked by both.")
@click.option("--save/--no-save", default=True)
def pykeen_cmd(dataset, data_dir, train_triples, eval_triples, save):
    """dgl-emu against PyKEEN (if installed) on the identical configuration, in the same process.

    DistMult d=100, batch 1000, K=256 uniform negatives, cross-entropy, Adagrad lr 0.1, no EMU
    (PyKEEN has none); then filtered evaluation (train+valid+test) of the same test triples.
    """
    try:
        from pykeen.evaluation import RankBasedEvaluator as PKEvaluator
        from pykeen.losses import CrossEntropyLoss as PKCrossEntropy
        from pykeen.models import DistMult as PKDistMult
        from pykeen.sampling import BasicNegativeSampler
        from pykeen.training import SLCWATrainingLoop
        from pykeen.triples import TriplesFactory
        import pykeen
    except ImportError:
        raise click.ClickException("PyKEEN is not installed (pip install -c constraints.txt pykeen)")
    kg = load_dataset(dataset, data_dir)
    sub = kg.splits["train"][:train_triples]
    steps = -(-len(sub) // 1000)
    # --- PyKEEN: one warm-up epoch, then one timed epoch
    tf = TriplesFactory(mapped_triples=sub, entity_to_id=kg.entity_to_id,
                        relation_to_id=kg.relation_to_id, create_inverse_triples=False)
    pk_model = PKDistMult(triples_factory=tf, embedding_dim=100, loss=PKCrossEntropy(), random_seed=0)
    loop = SLCWATrainingLoop(model=pk_model, triples_factory=tf,
                             optimizer=torch.optim.Adagrad(pk_model.parameters(), lr=0.1),
                             negative_sampler=BasicNegativeSampler,
                             negative_sampler_kwargs=dict(num_negs_per_pos=256))
    quiet = dict(batch_size=1000, use_tqdm=False, use_tqdm_batch=False)
    loop.train(triples_factory=tf, num_epochs=1, **quiet)
    start = time.perf_counter()
    loop.train(triples_factory=tf, num_epochs=2, continue_training=True, **quiet)
    pk_step = (time.perf_counter() - start) / steps
    # --- dgl-emu: the same configuration, same number of steps after a warm-up
    cfg = RunConfig(dataset=dataset, model="distmult", dim=100, batch_size=1000, num_negatives=256,
                    emu=False, progress=False).validate()
    m = build_model(cfg, kg)
    tr = Trainer(build_objective(cfg, m), build_regime(cfg, kg), sub, num_steps=3 + steps,
                 batch_size=1000, optimizer=OptimizerSchedule("adagrad", 0.1), progress=False)
    for _ in range(3):
        tr.train_step()
    start = time.perf_counter()
    for _ in range(steps):
        tr.train_step()
    our_step = (time.perf_counter() - start) / steps
    # --- evaluation of the same test triples, filtered with all splits
    test = kg.splits["test"][:eval_triples]
    start = time.perf_counter()
    PKEvaluator().evaluate(pk_model, mapped_triples=test, batch_size=1000, use_tqdm=False,
                           additional_filter_triples=[kg.splits["train"], kg.splits["valid"], kg.splits["test"]])
    pk_eval = time.perf_counter() - start
    start = time.perf_counter()
    RankBasedEvaluator(kg.filter_index(), batch_size=1000).evaluate(m.eval().scorer(), test)
    our_eval = time.perf_counter() - start
    emit("pykeen", {
        "dataset": dataset, "pykeen": pykeen.get_version(), "model": "distmult", "dim": 100,
        "batch_size": 1000, "negatives": 256, "timed_steps": steps, "eval_triples": len(test),
        "pykeen_seconds_per_step": secs(pk_step), "dgl_emu_seconds_per_step": secs(our_step),
        "train_step_speedup": ratio(pk_step, our_step, 2),
        "pykeen_eval_seconds": secs(pk_eval), "dgl_emu_eval_seconds": secs(our_eval),
        "eval_speedup": ratio(pk_eval, our_eval, 1)}, save)


@speed.command("sans")
@click.option("--dataset", default="fb15k-237", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--k", default=3, show_default=True)
@click.option("--walks", default=1000, show_default=True)
@click.option("--baseline-entities", default=50, show_default=True,
              help="Entities processed by a per-entity Python loop, extrapolated (0: skip).")
@click.option("--save/--no-save", default=True)
def sans(dataset, data_dir, k, walks, baseline_entities, save):
    """SANS preprocessing: k-hop neighbourhoods from DGL random walks for every entity."""
    import dgl

    from dgl_emu.sampling import k_hop_neighbourhoods
    kg = load_dataset(dataset, data_dir)
    graph = kg.graph("train")
    start = time.perf_counter()
    indptr, indices = k_hop_neighbourhoods(graph, k, walks)
    seconds = time.perf_counter() - start
    out = {"dataset": dataset, "k": k, "walks_per_entity": walks, "entities": kg.num_entities,
           "seconds": secs(seconds), "mean_neighbourhood": round(len(indices) / kg.num_entities, 1)}
    if baseline_entities:
        start = time.perf_counter()
        for e in range(baseline_entities):  # one walk call and a Python set per entity
            traces, _ = dgl.sampling.random_walk(graph, torch.full((walks,), e), length=k)
            _ = {x for x in traces[:, 1:].flatten().tolist() if x >= 0 and x != e}
        est = (time.perf_counter() - start) / baseline_entities * kg.num_entities
        out.update({"baseline": "per-entity loop", "baseline_seconds_extrapolated": secs(est),
                    "speedup_vs_baseline": ratio(est, seconds, 1)})
    emit("sans", out, save)


speed.add_command(scale)
speed.add_command(shard_eval)
speed.add_command(ingest)
speed.add_command(cli_memory)
