"""Batch strategies: neighbour-sampled (DGL block) vs full-graph training, the pipeline with encoders, resume."""
from __future__ import annotations

import json
import math

import dgl
import pytest
import torch

from dgl_emu.config import ConfigError, RunConfig
from dgl_emu.data import generate_cyclic_kg
from dgl_emu.losses import CrossEntropyLoss, EMULoss
from dgl_emu.models import KGEModel
from dgl_emu.nn.emu import EmbeddingMutation
from dgl_emu.nn.encoders import CompGCNEncoder, Decomposition, LookupEncoder, RGCNEncoder
from dgl_emu.nn.interactions import DistMult
from dgl_emu.pipeline import evaluate, run
from dgl_emu.rng import GeneratorPool
from dgl_emu.sampling import BernoulliNegativeSampler, UniformNegativeSampler
from dgl_emu.training import (Callback, FullGraphBatches, NegativeSampling, NeighborSampledBatches, Objective,
                              OptimizerSchedule, Trainer)
from dgl_emu.typing import Target

from .dense import dense_rgcn_layer, make_hand_kg, randomize_, relation_adjacency, rgcn_relation_weights

DIM, K = 6, 4
CPU = torch.device("cpu")
KINDS = ["rgcn", "compgcn"]


def _encoder(kind, kg, dropout=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    if kind == "rgcn":
        enc = RGCNEncoder(kg.num_entities, kg.num_relations, DistMult(dim=DIM), num_layers=2,
                          decomposition=Decomposition.BASIS, num_bases=2, dropout=dropout,
                          generator=gen, seed=seed + 3)
    else:
        enc = CompGCNEncoder(kg.num_entities, kg.num_relations, DistMult(dim=DIM), num_layers=2,
                             composition="corr", dropout=dropout, generator=gen, seed=seed + 3)
    enc = enc.double()
    randomize_(enc, torch.Generator().manual_seed(seed + 100), scale=0.4)
    return enc


def _trainer(kg, model, fanouts, *, objective=None, sampler=None, steps=1, batch_size=4,
             optimizer=OptimizerSchedule("sgd", 0.1), **kwargs):
    sampler = sampler or UniformNegativeSampler(kg.num_entities, K, kg.num_relations,
                                                generator=torch.Generator().manual_seed(1))
    objective = objective or Objective(model, CrossEntropyLoss())
    graph = kg.graph("train")
    batches = FullGraphBatches(graph) if fanouts is None else NeighborSampledBatches(graph, fanouts)
    return Trainer(objective, NegativeSampling(sampler), kg.splits["train"], num_steps=steps, batch_size=batch_size,
                   optimizer=optimizer, batches=batches, progress=False, **kwargs)


# ---------------------------------------------------------------------- blocks == full graph
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target", list(Target))
def test_full_fanout_blocks_equal_full_graph(kg, kind, target):
    model = KGEModel(_encoder(kind, kg), DistMult(dim=DIM))
    trainer = _trainer(kg, model, [-1, -1])
    triples = kg.splits["train"]
    idx = torch.tensor([len(triples) - 1, 0, 3, 2, 5])  # unsorted on purpose
    hrt = triples[idx]
    negatives = trainer.regime.sampler(hrt, target)
    state = trainer.generator.get_state()
    got = trainer.batches.gatherer(model, trainer.generator)(hrt, negatives, target)

    # the same draw again, to read the sampled pair graphs
    trainer.generator.set_state(state)
    input_nodes, pos, neg, blocks = trainer.batches.sample(hrt, negatives, target, trainer.generator)
    nid = pos.ndata[dgl.NID]
    src, dst = pos.edges()
    assert nid[src.long()].tolist() == hrt[:, target.other.column].tolist()
    assert nid[dst.long()].tolist() == hrt[:, target.column].tolist()
    assert torch.equal(nid[neg.edges()[1].long()].view(len(idx), K), negatives)

    want = model.gather(model.encode(kg.graph("train")), hrt, negatives, target)
    for name in ("anchor", "relation", "pos", "neg"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.shape == b.shape and a.dtype == torch.float64, name
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=name)

    # and so the loss and every gradient
    params = dict(model.named_parameters())
    trainer.objective.loss_of(got, target).backward()
    grads = {n: p.grad.clone() for n, p in params.items() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    trainer.objective.loss_of(want, target).backward()
    assert set(grads) == {n for n, p in params.items() if p.grad is not None} and "encoder.entity" in grads
    for n, g in grads.items():
        torch.testing.assert_close(g, params[n].grad, rtol=1e-8, atol=1e-10, msg=n)


@pytest.mark.parametrize("kind", KINDS)
def test_full_fanout_training_equals_full_graph_training(cyclic_kg, kind):
    """Within the first epoch both trainers see the same batches and negatives: same weights."""
    models, losses = [], []
    for fanouts in (None, [-1, -1]):
        model = KGEModel(_encoder(kind, cyclic_kg), DistMult(dim=DIM))
        record = []
        trainer = _trainer(cyclic_kg, model, fanouts, steps=4, batch_size=16,
                           callbacks=[_Record(record)])
        trainer.fit()
        models.append(model)
        losses.append(record)
    assert len(losses[0]) == 4 and losses[0] == pytest.approx(losses[1], rel=1e-9)
    start = _encoder(kind, cyclic_kg).entity
    assert not torch.allclose(models[0].encoder.entity, start)  # it did train
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10, msg=name)


class _Record(Callback):
    def __init__(self, out):
        self.out = out

    def on_step_end(self, trainer, record):
        self.out.append(record["loss"])


class _StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, record):
        if record["step"] == self.step:
            trainer.stop("interrupted by the test")


# ---------------------------------------------------------------------- sampled blocks
def test_sampled_rgcn_block_matches_dense_reference(hand_kg):
    """With fanouts below the in-degree, each block is normalised by its own sampled in-degrees."""
    enc = _encoder("rgcn", hand_kg)
    trainer = _trainer(hand_kg, KGEModel(enc, DistMult(dim=DIM)), [2, 2])
    hrt = hand_kg.splits["train"][torch.tensor([0, 1, 2, 6])]
    input_nodes, _, _, blocks = trainer.batches.sample(hrt, trainer.regime.sampler(hrt, Target.TAIL), Target.TAIL,
                                                       trainer.generator)
    for block in blocks:  # really sampled: at most 2 in-edges each, fewer than in the graph
        assert block.in_degrees().max() == 2
        assert block.num_edges() < hand_kg.graph("train").in_degrees(block.dstdata[dgl.NID]).sum()
    h = enc.entity[input_nodes]
    for i, (layer, block) in enumerate(zip(enc.layers, blocks)):
        h = dense_rgcn_layer(h, relation_adjacency(block, 4), rgcn_relation_weights(layer),
                             layer.loop_weight, layer.h_bias, torch.tanh if i == 0 else None)
    torch.testing.assert_close(enc(blocks, enc.entity[input_nodes]).entity, h, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_sampled_blocks_do_not_depend_on_earlier_full_graph_passes(hand_kg, kind):
    """Encoders write nothing into the graph they are given, so a full-graph pass (e.g. a
    validation) between two sampled steps changes neither the graph nor the next step."""
    model = KGEModel(_encoder(kind, hand_kg), DistMult(dim=DIM))
    trainer = _trainer(hand_kg, model, [2, 2])
    graph = trainer.batches.graph
    keys = (set(graph.ndata), set(graph.edata))
    hrt = hand_kg.splits["train"][torch.tensor([0, 1, 5, 8])]
    negatives = trainer.regime.sampler(hrt, Target.TAIL)
    state = trainer.generator.get_state()
    before = trainer.batches.gatherer(model, trainer.generator)(hrt, negatives, Target.TAIL)
    model.encode(graph)  # e.g. a validation between two training steps
    assert (set(graph.ndata), set(graph.edata)) == keys == (set(), {dgl.ETYPE})
    trainer.generator.set_state(state)
    after = trainer.batches.gatherer(model, trainer.generator)(hrt, negatives, Target.TAIL)
    for name in ("anchor", "relation", "pos", "neg"):
        assert torch.equal(getattr(before, name), getattr(after, name)), name


@pytest.mark.parametrize("kind", KINDS)
def test_minibatch_training_runs_and_learns(cyclic_kg, kind):
    model = KGEModel(_encoder(kind, cyclic_kg), DistMult(dim=DIM))
    objective = Objective(model, EMULoss(0.53, 0.11),
                          EmbeddingMutation(0.39, seed=2))
    losses = []
    trainer = _trainer(cyclic_kg, model, [3, 3], objective=objective, steps=20, batch_size=16,
                       optimizer=OptimizerSchedule("adam", 0.01), callbacks=[_Record(losses)])
    trainer.fit()
    assert trainer.step == 20 and len(losses) == 20
    assert all(math.isfinite(x) for x in losses)
    assert sum(losses[-5:]) < sum(losses[:5])


def test_neighbour_sampling_rejects_what_it_cannot_train(hand_kg):
    E, R = hand_kg.num_entities, hand_kg.num_relations
    lookup = KGEModel(LookupEncoder(E, R, DistMult(dim=DIM)), DistMult(dim=DIM))
    with pytest.raises(ValueError, match="GNN encoder"):
        _trainer(hand_kg, lookup, [2, 2])
    gnn = KGEModel(_encoder("rgcn", hand_kg), DistMult(dim=DIM))
    with pytest.raises(ValueError, match="one fanout per encoder layer"):
        _trainer(hand_kg, gnn, [2])
    with pytest.raises(ValueError, match="graph"):
        NeighborSampledBatches(None, [2, 2])
    with pytest.raises(ValueError, match="needs the training graph"):
        Trainer(Objective(gnn, CrossEntropyLoss()), NegativeSampling(UniformNegativeSampler(E, K, R)),
                hand_kg.splits["train"],
                num_steps=1, batch_size=2, optimizer=OptimizerSchedule(), progress=False)
    with pytest.raises(ConfigError, match="fanouts"):
        RunConfig(encoder="lookup", fanouts=[5, 5]).validate()
    with pytest.raises(ConfigError, match="fanouts"):
        RunConfig(encoder="rgcn", fanouts=[5]).validate()  # one per layer (2)


@pytest.mark.parametrize("kind", KINDS)
def test_bernoulli_sides_with_full_fanouts_equal_full_graph_training(cyclic_kg, kind):
    """Per-triple sides (Bernoulli) split each batch; neighbour sampling gathers each part.

    One step: afterwards the streams part, since each sampled part draws DGL's seed from the
    trainer's generator, which also draws the next step's sides."""
    models, losses = [], []
    for fanouts in (None, [-1, -1]):
        model = KGEModel(_encoder(kind, cyclic_kg), DistMult(dim=DIM))
        sampler = BernoulliNegativeSampler(cyclic_kg.splits["train"], cyclic_kg.num_entities,
                                           cyclic_kg.num_relations, K, seed=3)
        record = []
        _trainer(cyclic_kg, model, fanouts, sampler=sampler, steps=1, batch_size=32,
                 callbacks=[_Record(record)]).fit()
        models.append(model)
        losses.append(record)
    assert len(losses[0]) == 1 and losses[0] == pytest.approx(losses[1], rel=1e-9)
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10, msg=name)


# ---------------------------------------------------------------------- pipeline
@pytest.mark.parametrize("encoder,fanouts", [("rgcn", None), ("compgcn", None), ("rgcn", [5, 5]),
                                             ("compgcn", [5, 5])])
def test_pipeline_trains_evaluates_and_resumes(tmp_path, encoder, fanouts):
    out = tmp_path / "r"
    cfg = dict(dataset="synthetic", encoder=encoder, model="distmult", dim=8, steps=20, eval_every=10,
               num_negatives=8, batch_size=64, output=str(out), progress=False, fanouts=fanouts)
    result = run(RunConfig(**cfg), resume=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 20 and metrics["config"]["encoder"]["name"] == encoder
    assert metrics["config"]["training"]["fanouts"] == fanouts
    mrr = metrics["test"]["both"]["realistic"]["mrr"]
    assert 0.0 < mrr <= 1.0
    assert result.metrics["test"]["both"]["realistic"]["mrr"] == mrr
    log = (out / "log.jsonl").read_text()
    assert sum('"loss"' in line for line in log.splitlines()) == 20
    # a second call on the same output resumes the finished run: no extra steps, same result
    again = run(RunConfig(**cfg))
    assert again.metrics["steps"] == 20
    assert (out / "log.jsonl").read_text() == log
    assert again.metrics["test"]["both"]["realistic"]["mrr"] == mrr


def test_pipeline_trains_bernoulli_with_fanouts(tmp_path):
    cfg = RunConfig(dataset="synthetic", encoder="rgcn", model="distmult", dim=4, steps=4, eval_every=4,
                    sampler="bernoulli", fanouts=[2, 2], output=str(tmp_path / "b"), progress=False)
    assert run(cfg, resume=False).metrics["steps"] == 4


# ---------------------------------------------------------------------- resume
def _resumable(kind, run_dir, fanouts=None, callbacks=()):
    """A fresh trainer, built from seeds only (a new process would build exactly this)."""
    # a new graph each time, so nothing is cached on it; sampled runs use the hand-made graph, whose
    # several in-edges per (node, relation) make sampled and full-graph R-GCN norms differ
    kg = make_hand_kg() if fanouts else generate_cyclic_kg(num_rings=3, ring_size=5)
    model = KGEModel(_encoder(kind, kg, dropout=0.2), DistMult(dim=DIM))
    objective = Objective(model, EMULoss(0.53, 0.11), EmbeddingMutation(0.39, seed=5))
    sampler = UniformNegativeSampler(kg.num_entities, K, kg.num_relations, seed=6)
    graph = kg.graph("train")

    def validate(m):  # as the pipeline does: a full-graph pass in eval mode
        return evaluate(m, kg, "valid", graph=graph).get("mrr")

    return _trainer(kg, model, fanouts, objective=objective, sampler=sampler, steps=20, batch_size=4,
                    optimizer=OptimizerSchedule("adam", 0.01), run_dir=run_dir,
                    eval_every=10, validate=validate, callbacks=list(callbacks), seed=4)


@pytest.mark.parametrize("kind,fanouts", [("rgcn", None), ("compgcn", None), ("rgcn", [2, 2]),
                                          ("compgcn", [2, 2])])
def test_resume_with_encoder_dropout_is_bit_identical(tmp_path, kind, fanouts):
    whole = _resumable(kind, tmp_path / "whole", fanouts).fit()
    first = _resumable(kind, tmp_path / "split", fanouts, callbacks=[_StopAt(10)]).fit()
    assert first.step == 10 and first.stop_reason is not None
    state = torch.load(tmp_path / "split" / "last.pt", weights_only=False)
    assert "model.encoder.dropout" in state["rng"]["objective"] and "mutation" in state["rng"]["objective"]
    second = _resumable(kind, tmp_path / "split", fanouts)
    assert second.resume() and second.step == 10
    second.fit()
    assert second.step == 20 and second.validations == whole.validations
    for (name, a), b in zip(whole.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_resume_needs_the_dropout_generator(tmp_path):
    """Control: resuming without the dropout masks' generator state ends elsewhere."""
    whole = _resumable("rgcn", tmp_path / "whole").fit()
    _resumable("rgcn", tmp_path / "split", callbacks=[_StopAt(10)]).fit()
    second = _resumable("rgcn", tmp_path / "split")
    assert second.resume()
    second.model.encoder.dropout.generators = GeneratorPool(second.model.encoder.dropout.generators.seed)
    second.fit()
    assert not torch.equal(whole.model.encoder.entity, second.model.encoder.entity)
