"""Test-case templates, one per component family (the shape of PyKEEN's ``tests/cases.py``).

A registered component gets its tests by one small subclass in ``tests/test_registries.py``::

    class TestUniform(SamplerCase):
        name = "uniform"

The subclass names the component in its registry and, where needed, its options; the template
supplies the contract every member of the family must keep. ``test_registries.py`` also holds a
meta-test per registry that fails when a registered component has no such subclass.
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Tuple

import dgl
import torch

from dgl_emu.config import RunConfig
from dgl_emu.data import KnowledgeGraph, generate_cyclic_kg
from dgl_emu.losses import LOSSES, REGULARIZERS
from dgl_emu.nn.emu import MUTATIONS
from dgl_emu.nn.encoders import ENCODERS
from dgl_emu.nn.interactions import DistMult
from dgl_emu.pipeline import build_sampler
from dgl_emu.sampling import SAMPLERS
from dgl_emu.training import OPTIMIZERS
from dgl_emu.typing import Target

KG = generate_cyclic_kg(num_rings=4, ring_size=8)
K = 16


class SamplerCase:
    """Negative samplers: shapes, id range, only the target slot changes, seeded determinism and
    explicit RNG state, DGL's protocol, and construction from a configuration."""

    name: ClassVar[str]
    options: ClassVar[Dict[str, Any]] = {}

    def make(self, seed: int = 0):
        return SAMPLERS.make(self.name, {"num_negatives": K, **self.options},
                             {"kg": KG, "num_entities": KG.num_entities,
                              "num_relations": KG.num_relations, "seed": seed})

    def test_shape_range_and_target_slot(self):
        hrt = KG.splits["train"]
        for target in Target:
            neg = self.make()(hrt, target)
            assert neg.shape == (len(hrt), K) and neg.dtype == torch.long
            assert 0 <= int(neg.min()) and int(neg.max()) < KG.num_entities
            assert (neg != hrt[:, target.column:target.column + 1]).double().mean() > 0.5
            assert not torch.equal(neg, neg[:1].expand_as(neg))

    def test_seeded_determinism_and_rng_state(self):
        hrt = KG.splits["train"]
        a, b, c = self.make(1), self.make(1), self.make(2)
        first = a(hrt, Target.TAIL)
        assert torch.equal(first, b(hrt, Target.TAIL)) and not torch.equal(first, c(hrt, Target.TAIL))
        state = a.rng_state()
        second = a(hrt, Target.TAIL)
        assert not torch.equal(first, second)       # the stream goes on
        a.load_rng_state(state)
        assert torch.equal(a(hrt, Target.TAIL), second)

    def test_dgl_protocol(self):
        g = KG.graph("train")
        N = len(KG.splits["train"])
        eids = torch.tensor([0, 5, N + 3, N + 7])   # two original edges, two inverse edges
        src, dst = self.make()(g, eids)
        g_src, g_dst = g.find_edges(eids)
        assert torch.equal(src, g_src.repeat_interleave(K))   # the kept end of every negative edge
        assert len(dst) == 4 * K and int(dst.max()) < KG.num_entities
        assert not torch.equal(dst.view(4, K), g_dst.unsqueeze(1).expand(-1, K))

    def test_builds_from_a_configuration(self):
        cfg = RunConfig.from_dict({"sampler": {"name": self.name, **self.options}, "num_negatives": 4})
        sampler = build_sampler(cfg, KG)
        assert type(sampler) is SAMPLERS.get(self.name) and sampler.num_negatives == 4


class LossCase:
    """Plain losses over ``(B, 1 + K)`` scores: values written out by hand, gradients, and that a
    higher positive score lowers the loss."""

    name: ClassVar[str]
    options: ClassVar[Dict[str, Any]] = {}
    #: ``(scores, expected loss)`` pairs computed by hand
    known: ClassVar[List[Tuple[List[List[float]], float]]]
    #: whether the gradient is the derivative of the value (not with detached weights)
    exact_gradient: ClassVar[bool] = True

    def make(self):
        return LOSSES.make(self.name, self.options)

    def test_known_values(self):
        for scores, expected in self.known:
            assert abs(float(self.make()(torch.tensor(scores, dtype=torch.float64))) - expected) < 1e-9

    def test_gradient_matches_finite_differences(self):
        scores = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                             requires_grad=True)
        if self.exact_gradient:
            assert torch.autograd.gradcheck(self.make(), (scores,))
        else:  # detached parts: autograd's gradient differs from the derivative of the value
            with torch.no_grad():
                assert not torch.autograd.gradcheck(self.make(), (scores,), raise_exception=False)

    def test_higher_positive_score_lowers_the_loss(self):
        scores = torch.zeros(2, 4, dtype=torch.float64)
        better = scores.clone()
        better[:, 0] = 1.0
        loss = self.make()
        assert float(loss(better)) < float(loss(scores))


class EncoderCase:
    """Encoders: output shapes, no valid/test edge used, gradients reach the input tables, and the
    caller's graph is left as it was."""

    name: ClassVar[str]
    options: ClassVar[Dict[str, Any]] = {}
    dim: ClassVar[int] = 6

    def make(self, kg: KnowledgeGraph = KG):
        return ENCODERS.make(self.name, {**self.options}, {
            "num_entities": kg.num_entities, "num_relations": kg.num_relations,
            "interaction": DistMult(dim=self.dim), "generator": torch.Generator().manual_seed(0), "seed": 0})

    def test_shapes(self):
        enc = self.make()
        reps = enc(KG.graph("train") if enc.needs_graph else None)
        assert reps.entity.shape == (KG.num_entities, self.dim)
        assert reps.relation.shape == (KG.num_relations, self.dim)

    def test_no_valid_or_test_edge_is_used(self):
        """The same training split with other valid/test triples gives the same output."""
        other = KnowledgeGraph.from_id_triples({"train": KG.splits["train"], "valid": KG.splits["test"],
                                                "test": KG.splits["valid"]}, KG.num_entities, KG.num_relations)
        outputs = []
        for kg in (KG, other):
            enc = self.make(kg).eval()
            outputs.append(enc(kg.graph("train") if enc.needs_graph else None).entity)
        assert torch.equal(outputs[0], outputs[1])

    def test_gradient_reaches_the_tables_and_graph_is_untouched(self):
        enc = self.make()
        graph = KG.graph("train")
        keys = (set(graph.ndata), set(graph.edata))
        reps = enc(graph if enc.needs_graph else None)
        (reps.entity.sum() + reps.relation.sum()).backward()
        grads = {n: p.grad for n, p in enc.named_parameters()}
        assert grads["entity"] is not None and bool(grads["entity"].abs().sum() > 0)
        assert (set(graph.ndata), set(graph.edata)) == keys == (set(), {dgl.ETYPE})


    def test_layerwise_inference_equals_the_forward_pass(self):
        """Evaluation encodes layer by layer over node batches (7 nodes here): same result."""
        enc = self.make().eval()
        graph = KG.graph("train") if enc.needs_graph else None
        with torch.no_grad():
            full = enc(graph)
        batched = enc.inference(graph, batch_size=7)
        torch.testing.assert_close(batched.entity, full.entity, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(batched.relation, full.relation, rtol=1e-5, atol=1e-6)


class MutationCase:
    """EMU variants: shapes, identity in eval mode, gradients to both inputs, explicit RNG state."""

    name: ClassVar[str]
    options: ClassVar[Dict[str, Any]] = {}
    #: a control that leaves the negatives as they are (soft labels only): no randomness, and
    #: the output is the input itself in training too
    unmutated: ClassVar[bool] = False

    def make(self, seed: int = 0):
        return MUTATIONS.make(self.name, self.options, {"seed": seed})

    def test_unmutated_in_training_only_if_declared(self):
        pos, neg = self.inputs()
        out, _ = self.make().train().mutate(pos, neg)
        assert (out is neg) == self.unmutated

    def inputs(self):
        g = torch.Generator().manual_seed(3)
        pos = torch.randn(4, 1, 5, generator=g, requires_grad=True)
        neg = torch.randn(4, 7, 5, generator=g, requires_grad=True)
        return pos, neg

    def test_shapes_and_identity_in_eval(self):
        pos, neg = self.inputs()
        out, labels = self.make().mutate(pos, neg)
        assert out.shape == neg.shape and (labels is None or labels.shape == (4, 7))
        assert torch.equal(self.make().eval()(pos, neg), neg)

    def test_gradients_reach_both_inputs(self):
        if self.unmutated:
            return
        pos, neg = self.inputs()
        self.make()(pos, neg).sum().backward()
        assert bool(pos.grad.abs().sum() > 0) and bool(neg.grad.abs().sum() > 0)

    def test_rng_state(self):
        if self.unmutated:
            return
        pos, neg = self.inputs()
        m = self.make(seed=5)
        state = m.rng_state()
        first = m(pos, neg)
        m.load_rng_state(state)
        assert torch.equal(m(pos, neg), first)
        assert not torch.equal(m(pos, neg), first)


class RegularizerCase:
    """Regularisers: a value written out by hand; weight 0 gives 0."""

    name: ClassVar[str]
    #: ``(options, embeddings, expected)`` computed by hand
    known: ClassVar[List[Tuple[Dict[str, Any], List[List[float]], float]]]

    def test_known_values(self):
        for options, x, expected in self.known:
            reg = REGULARIZERS.make(self.name, options)
            assert abs(float(reg(torch.tensor(x, dtype=torch.float64))) - expected) < 1e-9, (options, x)

    def test_zero_weight(self):
        reg = REGULARIZERS.make(self.name, {"weight": 0.0})
        assert float(reg(torch.ones(2, 3))) == 0.0


class OptimizerCase:
    """Optimisers: built with their options from a configuration, one step lowers a quadratic."""

    name: ClassVar[str]
    options: ClassVar[Dict[str, Any]] = {}

    def test_step_lowers_a_quadratic(self):
        w = torch.nn.Parameter(torch.tensor([3.0, -2.0]))
        opt = OPTIMIZERS.make(self.name, {"lr": 0.1, **self.options}, {"params": [w]})
        before = float((w.detach() ** 2).sum())
        (w ** 2).sum().backward()
        opt.step()
        assert float((w.detach() ** 2).sum()) < before

    def test_options_from_a_configuration(self):
        cfg = RunConfig.from_dict({"optimizer": {"name": self.name, "lr": 0.25, **self.options}})
        assert cfg.optimizer.name == self.name and cfg.get("optimizer.lr") == 0.25


#: template -> the registry whose every member needs a subclass of it
TEMPLATES = {SamplerCase: SAMPLERS, LossCase: LOSSES, EncoderCase: ENCODERS, MutationCase: MUTATIONS,
             RegularizerCase: REGULARIZERS, OptimizerCase: OPTIMIZERS}
