"""The pipeline: config -> components -> train -> evaluate -> run directory."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import pytest
import torch

from dgl_emu.config import ConfigError, RunConfig
from dgl_emu.data import generate_cyclic_kg, load_dataset
from dgl_emu.losses import CrossEntropyLoss, EMULoss, LpRegularizer, MarginRankingLoss, SoftplusLoss
from dgl_emu.nn.emu import EmbeddingMixup, EmbeddingMutation
from dgl_emu.pipeline import (build_model, build_objective, build_sampler, default_output, evaluate,
                              load_run, run)
from dgl_emu.pipeline.rundir import MARKER
from dgl_emu.training import Callback
from dgl_emu.sampling import BernoulliNegativeSampler, FilteredNegativeSampler, UniformNegativeSampler


def tiny(output: Path, **kw) -> RunConfig:
    base = dict(dim=8, num_negatives=8, steps=30, batch_size=64, eval_every=15, progress=False,
                output=str(output))
    base.update(kw)
    return RunConfig(**base)


def roundtrip(obj):
    return json.loads(json.dumps(obj))


def test_emu_on_and_off_share_data_but_not_weights(tmp_path):
    results = {emu: run(tiny(tmp_path / str(emu), emu=emu)) for emu in (True, False)}
    on, off = results[True].metrics, results[False].metrics
    # data-derived fields agree
    assert on["dataset"] == off["dataset"] == load_dataset("synthetic").statistics()
    for split in ("valid", "test"):
        for side in ("head", "tail", "both"):
            assert on[split][side]["realistic"]["count"] == off[split][side]["realistic"]["count"]
    assert on["steps"] == off["steps"] == 30
    assert [v["step"] for v in on["validations"]] == [v["step"] for v in off["validations"]] == [15, 30]
    # same seed: same initial model; training made the difference
    kg = load_dataset("synthetic")
    init_on = build_model(tiny(tmp_path, emu=True).validate(), kg).state_dict()
    init_off = build_model(tiny(tmp_path, emu=False).validate(), kg).state_dict()
    assert all(torch.equal(init_on[k], init_off[k]) for k in init_on)
    last = {emu: torch.load(r.run_dir / "last.pt", weights_only=False)["model"] for emu, r in results.items()}
    assert not torch.equal(last[True]["encoder.entity"], last[False]["encoder.entity"])
    assert not torch.equal(last[True]["encoder.entity"], init_on["encoder.entity"])


@pytest.mark.parametrize("emu", [True, False])
def test_written_metrics_equal_fresh_evaluation_of_best(tmp_path, emu):
    result = run(tiny(tmp_path / "run", emu=emu, model="complex"))
    written = json.loads((result.run_dir / "metrics.json").read_text())
    assert written == roundtrip(result.metrics)
    cfg, kg, model, graph = load_run(result.run_dir)
    best = torch.load(result.run_dir / "best.pt", weights_only=False)
    assert all(torch.equal(v, best["model"][k]) for k, v in model.state_dict().items())
    for split in ("valid", "test"):
        assert roundtrip(evaluate(model, kg, split).metrics()) == written[split]
    # the best validation MRR recorded is the one that the best weights give
    assert written["valid"]["both"]["realistic"]["mrr"] == pytest.approx(best["valid_mrr"], abs=1e-12)
    # what else the numbers depend on: versions and the CPU kernels PyTorch picked
    import dgl
    assert written["environment"] == {
        "python": platform.python_version(), "torch": torch.__version__, "dgl": dgl.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
        "device": "cpu"}
    assert written["environments"] == [{"from_step": 0, **written["environment"]}]  # one invocation


def _write_tsv(path: Path, kg, split: str) -> Path:
    ent, rel = kg.entity_labels, kg.relation_labels
    path.write_text("".join(f"{ent[h]}\t{rel[r]}\t{ent[t]}\n" for h, r, t in kg.splits[split].tolist()))
    return path


def test_run_without_validation_split_keeps_final_weights_and_resumes(tmp_path):
    kg = generate_cyclic_kg(num_rings=4, ring_size=8)
    train, test = _write_tsv(tmp_path / "train.tsv", kg, "train"), _write_tsv(tmp_path / "test.tsv", kg, "test")
    cfg = tiny(tmp_path / "run", train=str(train), test=str(test), steps=20, eval_every=10)
    first = run(cfg)
    best = torch.load(first.run_dir / "best.pt", weights_only=False)
    assert best["step"] == 20 and best["valid_mrr"] is None and first.metrics["best_valid_mrr"] is None
    assert "valid" not in first.metrics and first.metrics["validations"] == []
    assert first.metrics["test"]["both"]["realistic"]["count"] == 2 * len(kg.splits["test"])
    log = (first.run_dir / "log.jsonl").read_text()
    assert len(log.splitlines()) == 20
    # re-running the same config must not train again
    again = run(tiny(tmp_path / "run", train=str(train), test=str(test), steps=20, eval_every=10))
    assert torch.load(first.run_dir / "last.pt", weights_only=False)["step"] == 20
    assert (again.run_dir / "log.jsonl").read_text() == log
    assert again.metrics["test"] == first.metrics["test"]


def test_builders_follow_the_config(tmp_path):
    kg = generate_cyclic_kg(num_rings=4, ring_size=8)
    cfg = tiny(tmp_path, keep_prob=0.25, negative_label=0.4, plain_weight=0.3, loss="softplus",
               adversarial_temperature=0.5, regularizer_weight=0.01, regularizer_p=2.0).validate()
    model = build_model(cfg, kg)
    obj = build_objective(cfg, model)
    assert isinstance(obj.mutation, EmbeddingMutation) and obj.mutation.keep_prob == 0.25
    assert isinstance(obj.loss, EMULoss) and (obj.loss.negative_label, obj.loss.plain_weight) == (0.4, 0.3)
    assert isinstance(obj.loss.plain_loss, SoftplusLoss) and obj.loss.plain_loss.adversarial_temperature == 0.5
    assert isinstance(obj.regularizer, LpRegularizer) and (obj.regularizer.weight, obj.regularizer.p) == (0.01, 2.0)
    plain = build_objective(tiny(tmp_path, emu=False, loss="margin", margin=2.0).validate(), model)
    assert plain.mutation is None and isinstance(plain.loss, MarginRankingLoss) and plain.loss.margin == 2.0
    mix = build_objective(tiny(tmp_path, mutation="mixup").validate(), model)
    assert isinstance(mix.mutation, EmbeddingMixup) and isinstance(mix.loss.plain_loss, CrossEntropyLoss)

    s = build_sampler(tiny(tmp_path, sampler="bernoulli").validate(), kg)
    assert isinstance(s, BernoulliNegativeSampler) and s.num_negatives == 8 and s.num_entities == kg.num_entities
    f = build_sampler(tiny(tmp_path, filtered=True).validate(), kg)
    assert isinstance(f, FilteredNegativeSampler) and isinstance(f.base, UniformNegativeSampler)
    # the sampler is seeded from the run seed: same seed, same draws
    a, b = (build_sampler(tiny(tmp_path).validate(), kg) for _ in range(2))
    hrt = kg.splits["train"][:5]
    from dgl_emu.typing import Target
    assert torch.equal(a(hrt, Target.TAIL), b(hrt, Target.TAIL))


def test_default_output_and_config_validation(tmp_path):
    cfg = RunConfig().validate()
    assert default_output(cfg) == Path("runs/synthetic-rotate-uniform-mutation-d64-s0")
    assert default_output(RunConfig(emu=False, dim=8, seed=3).validate()) == \
        Path("runs/synthetic-rotate-uniform-plain-d8-s3")
    with pytest.raises(ConfigError, match="^emu.keep_prob"):
        RunConfig(keep_prob=-0.1).validate()
    with pytest.raises(ConfigError, match="^sampler"):
        RunConfig(sampler="hard").validate()
    with pytest.raises(ConfigError, match="unknown option"):
        RunConfig().updated(no_such=1)
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("dim: 1\n")
    (out / "metrics.json").write_text("{}")   # a finished run's results: protected
    with pytest.raises(ConfigError, match=r"another configuration \(model.dim: 1 -> 8"):
        run(tiny(out))
    (out / "metrics.json").unlink()            # no checkpoint: a failed start does not block,
    (out / MARKER).write_text("")              # in a directory dgl-emu wrote (else it is a user's)
    assert run(tiny(out)).metrics["steps"] == 30


class _SlowSteps(Callback):
    """Sleeps after every step, so the fit dominates the run's time."""

    def on_step_end(self, trainer, record):
        time.sleep(0.1)


def test_wall_seconds_counts_the_fit_once(tmp_path):
    """wall_seconds = fit (over invocations) + this invocation's set-up and final evaluation: it
    holds the 30 x 0.1 s slept inside the fit, and never more than the call really took (the fit
    was once counted twice, as set-up and as fit)."""
    started = time.perf_counter()
    metrics = run(tiny(tmp_path / "run"), callbacks=[_SlowSteps()]).metrics
    elapsed = time.perf_counter() - started
    assert 3.0 <= metrics["wall_seconds"] <= elapsed
    assert metrics["train_seconds"] <= metrics["wall_seconds"]
