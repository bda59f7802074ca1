"""The fused EMU kernels against their oracle: the mutated negatives formed with torch operations."""
from __future__ import annotations

import contextlib
import logging

import pytest
import torch

from dgl_emu.counter_rng import draw_key
from dgl_emu.losses import EMULoss
from dgl_emu.models import KGEModel
from dgl_emu.nn import fused as fused_module
from dgl_emu.nn.emu import EmbeddingMutation
from dgl_emu.nn.fused import FusedKind, fused_scores, kernels, reference_scores, unfused
from dgl_emu.nn.interactions import INTERACTIONS
from dgl_emu.nn.encoders import LookupEncoder
from dgl_emu.rng import row_window
from dgl_emu.training import Objective, Part
from dgl_emu.typing import Sharing, Target

pytestmark = pytest.mark.skipif(kernels() is None, reason="the fused kernels are not available here")

E, R, B, K = 40, 4, 9, 6


def _inputs(kind: FusedKind, chunk: int, seed: int = 0, dtype=torch.float64, phase: int = 0):
    g = torch.Generator().manual_seed(seed)
    d = 8
    q = torch.randn(B, d, generator=g, dtype=dtype, requires_grad=True)
    p = torch.randn(B, d, generator=g, dtype=dtype, requires_grad=True)
    n = torch.randn(-(-(B + phase) // chunk), K, d, generator=g, dtype=dtype, requires_grad=True)
    return q, p, n


@pytest.mark.parametrize("kind", list(FusedKind))
@pytest.mark.parametrize("with_plain", [True, False])
@pytest.mark.parametrize("chunk, phase", [(1, 0), (4, 0), (4, 3)])
def test_fused_scores_and_gradients_equal_the_formed_mutation(kind, with_plain, chunk, phase):
    """Scores of the mutated and the plain negatives, and the gradients of the query, the
    positive and the negatives (shared by chunks of rows, the first row anywhere in its chunk,
    or not shared), agree with the oracle."""
    q, p, n = _inputs(kind, chunk, phase=phase)
    g = torch.Generator().manual_seed(1)
    w_emu, w_plain = torch.randn(B, K, generator=g, dtype=q.dtype), torch.randn(B, K, generator=g, dtype=q.dtype)
    results = []
    for scores in (fused_scores, reference_scores):
        emu, plain = scores(q, p, n, kind, draw_key(3, 4), 17, 0.39, with_plain, chunk, phase)
        loss = (emu * w_emu).sum() + ((plain * w_plain).sum() if with_plain else 0)
        results.append((emu, plain, torch.autograd.grad(loss, (q, p, n))))
    (emu, plain, grads), (emu_ref, plain_ref, grads_ref) = results
    torch.testing.assert_close(emu, emu_ref, rtol=1e-12, atol=1e-12)
    if with_plain:
        torch.testing.assert_close(plain, plain_ref, rtol=1e-12, atol=1e-12)
    else:
        assert plain is None and plain_ref is None
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_keep_all_scores_the_negatives_and_keep_none_the_positive():
    q, p, n = _inputs(FusedKind.DOT, 1)
    all_kept, plain = fused_scores(q, p, n, FusedKind.DOT, draw_key(0, 0), 0, 1.0)
    torch.testing.assert_close(all_kept, plain, rtol=0, atol=0)
    none_kept, _ = fused_scores(q, p, n, FusedKind.DOT, draw_key(0, 0), 0, 0.0, with_plain=False)
    torch.testing.assert_close(none_kept, (q * p).sum(1, keepdim=True).expand(B, K), rtol=1e-12, atol=1e-12)


#: the interactions with a candidate form on both sides (TuckER's head side needs batch norm off)
FORMS = [("transe", {"p_norm": 2}), ("distmult", {}), ("complex", {}), ("rotate", {}), ("tucker", {"batch_norm": False}),
         ("tucker", {}), ("rescal", {}), ("hole", {}), ("simple", {}), ("quate", {}), ("cp", {})]


@pytest.mark.parametrize("name,options", FORMS, ids=[n + ("-bn" if n == "tucker" and not o else "") for n, o in FORMS])
@pytest.mark.parametrize("target", list(Target))
def test_candidate_form_is_the_interactions_candidate_score(name, options, target):
    """``form.score(kernel(candidates, form.query))`` equals ``score_candidates``: the form the
    kernels use is the interaction's own score (TuckER with batch norm in train mode: tails only)."""
    inter = INTERACTIONS.get(name)(dim=5, **options).double()
    g = torch.Generator().manual_seed(2)
    width, rwidth = inter.entity_dim, inter.relation_dim
    h, t = torch.randn(B, 1, width, generator=g, dtype=torch.float64), torch.randn(B, 1, width, generator=g,
                                                                                   dtype=torch.float64)
    r = torch.randn(B, 1, rwidth, generator=g, dtype=torch.float64)
    cands = torch.randn(B, K, width, generator=g, dtype=torch.float64)
    form = inter.candidate_form(h, r, t, target)
    if name == "tucker" and options.get("batch_norm", True) and target is Target.HEAD:
        assert form is None  # batch statistics over the candidates: not a comparison with one query
        return
    raw = fused_module.compare(cands, form.query, form.kind)
    torch.testing.assert_close(form.score(raw), inter.score_candidates(h, r, t, cands, target),
                               rtol=1e-12, atol=1e-12)


def _objective(name: str, sparse: bool, separate: bool, seed: int = 0):
    inter = INTERACTIONS.get(name)(dim=6).double()
    encoder = LookupEncoder(E, R, inter, torch.Generator().manual_seed(seed), sparse=sparse).double()
    model = KGEModel(encoder, inter)
    return Objective(model, EMULoss(0.53, 0.11), EmbeddingMutation(0.39, seed=4), separate_negatives=separate)


def _batch(separate: bool):
    g = torch.Generator().manual_seed(3)
    hrt = torch.stack([torch.randint(0, E, (B,), generator=g), torch.randint(0, R, (B,), generator=g),
                       torch.randint(0, E, (B,), generator=g)], 1)
    return hrt, torch.randint(0, E, (B, 2 * K if separate else K), generator=g)


def _loss_and_grads(objective, hrt, neg, target):
    model = objective.model
    loss = objective.loss_of(model.gather(model.encode(), hrt, neg, target), target)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params)
    return loss, [g.to_dense() if g.is_sparse else g for g in grads]


@pytest.mark.parametrize("name", INTERACTIONS.names())
@pytest.mark.parametrize("target", list(Target))
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("separate", [False, True], ids=["shared", "separate"])
def test_objective_fused_equals_formed(name, target, sparse, separate):
    """EMU's loss and every parameter's gradient are the same through the kernels and with the
    mutated negatives formed, for every interaction (ConvE, TransD and pRotatE have no candidate
    form, nor TuckER's head side with batch norm in train mode: both run formed), both sides, dense
    and sparse tables, shared and separate negatives."""
    if name == "conve" and sparse:
        pytest.skip("ConvE trains dense tables")
    hrt, neg = _batch(separate)
    runs = []
    for ctx in (contextlib.nullcontext(), unfused()):
        objective = _objective(name, sparse, separate)
        with ctx:
            runs.append(_loss_and_grads(objective, hrt, neg, target))
        assert objective.mutation.generators.state_dict() == {"draws": 1}
    (loss, grads), (loss_ref, grads_ref) = runs
    torch.testing.assert_close(loss, loss_ref, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", INTERACTIONS.names())
@pytest.mark.parametrize("target", list(Target))
def test_objective_fuses_exactly_where_a_candidate_form_exists(name, target, monkeypatch):
    """The kernels score EMU's mutated negatives when the interaction gives a candidate form for
    the side (in train mode), and the mutated negatives are formed otherwise: the EMU mask acts on
    the whole gathered entity row either way."""
    from dgl_emu.training import step
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[3])
        return fused_scores(*args, **kwargs)

    monkeypatch.setattr(step, "engine_for", lambda device: counting)
    hrt, neg = _batch(False)
    objective = _objective(name, False, False)
    model = objective.model
    g = model.gather(model.encode(), hrt, neg, target)
    form = model.interaction.candidate_form(g.anchor, g.relation, g.anchor, target)
    objective.loss_of(g, target)
    assert calls == ([form.kind] if form is not None else [])
    expected = {"conve": False, "transd": False, "protate": False, "tucker": target is Target.TAIL}
    assert (form is not None) == expected.get(name, True)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "formed"])
def test_a_process_holding_some_rows_scores_them_as_one_process(fused):
    """Data-parallel processes score rows [a, b) of each part inside a row window: their EMU
    scores are the rows of the one-process scores (the bits of global rows, no mask passed)."""
    hrt, neg = _batch(False)
    whole = _objective("distmult", False, False)
    model = whole.model
    g = model.gather(model.encode(), hrt, neg, Target.TAIL)
    with (contextlib.nullcontext() if fused else unfused()):
        emu, plain, _ = whole.emu_scores(g, g, Target.TAIL)
        for rows in (slice(0, 4), slice(4, B)):
            part = _objective("distmult", False, False)
            mine = part.model.gather(part.model.encode(), hrt[rows], neg[rows], Target.TAIL)
            with row_window(part, B, rows):
                emu_rows, plain_rows, _ = part.emu_scores(mine, mine, Target.TAIL)
            torch.testing.assert_close(emu_rows, emu[rows], rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(plain_rows, plain[rows], rtol=1e-12, atol=1e-12)


def test_without_a_compiler_emu_runs_formed_with_one_log_line(monkeypatch, caplog):
    """A failed build leaves the kernels out: kernel_status says why, one warning is logged,
    and EMU trains on the formed path."""
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler found (g++)")

    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    monkeypatch.setitem(fused_module._STATE, "loaded", False)
    monkeypatch.setitem(fused_module._STATE, "module", None)
    monkeypatch.setitem(fused_module._STATE, "status", "not loaded")
    with caplog.at_level(logging.WARNING, logger="dgl_emu.nn.fused"):
        assert fused_module.kernels() is None
        assert fused_module.kernels() is None   # once: the failure is remembered
    assert "unavailable (no C++ compiler found (g++))" in fused_module.kernel_status()
    assert [r.getMessage() for r in caplog.records].count(f"fused EMU kernels {fused_module.kernel_status()}") == 1
    hrt, neg = _batch(False)
    loss, _ = _loss_and_grads(_objective("distmult", False, False), hrt, neg, Target.TAIL)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "formed"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("emu", [True, False], ids=["emu", "plain"])
def test_shared_negatives_are_gathered_once_and_score_as_repeated_ones(fused, sparse, emu):
    """Rows that share a draw (chunks of 4, a part starting inside a chunk): each shared set is
    gathered once (``neg`` is ``(C, K, d)``), and EMU's loss and gradients equal those of the
    same negatives gathered row by row."""
    sharing = Sharing(chunk=4, phase=1)
    g = torch.Generator().manual_seed(5)
    hrt = torch.stack([torch.randint(0, E, (B,), generator=g), torch.randint(0, R, (B,), generator=g),
                       torch.randint(0, E, (B,), generator=g)], 1)
    sets = torch.randint(0, E, (sharing.sets(B), K), generator=g)
    negatives = sets[sharing.set_of(B)]          # (B, K): rows of a chunk repeat one set
    runs = []
    for share in (sharing, Sharing()):
        objective = _objective("distmult", sparse, False)
        if not emu:   # the plain step: shared sets scored by the kernel (keep-all) or repeated
            objective = Objective(objective.model, EMULoss().plain_loss)
        model = objective.model
        gathered = model.gather(model.encode(), hrt, negatives, Target.TAIL, share)
        assert gathered.neg.shape[0] == (sharing.sets(B) if share.chunk > 1 else B)
        with (contextlib.nullcontext() if fused else unfused()):
            loss = objective.loss_of(gathered, Target.TAIL)
        grads = torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])
        runs.append((loss, [x.to_dense() if x.is_sparse else x for x in grads]))
    (loss, grads), (loss_ref, grads_ref) = runs
    torch.testing.assert_close(loss, loss_ref, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_a_share_of_a_chunked_part_keeps_its_place_in_the_chunks():
    part = Part(Target.TAIL, torch.zeros(10, 3), torch.arange(10).view(10, 1) // 4, Sharing(4))
    mine = part.take(slice(5, 10))
    assert mine.sharing == Sharing(4, 1)
    first = mine.negatives[mine.sharing.first_rows(5)]
    assert first.flatten().tolist() == [1, 2]   # rows 5 and 8 of the part start its sets


def test_training_with_shared_negatives_follows_the_repeated_ones():
    """A trainer whose sampler shares draws (chunk_size 8) gathers each set once; its SGD loss
    trace equals that of the same draws gathered row by row (the sampler's sharing hidden)."""
    from dgl_emu.sampling import UniformNegativeSampler
    from dgl_emu.training import NegativeSampling, OptimizerSchedule, Trainer

    class RowByRow(UniformNegativeSampler):
        shared_rows = None

    triples = torch.stack([torch.arange(60) % E, torch.arange(60) % R, (torch.arange(60) * 7 + 1) % E], 1)
    traces = []
    for sampler_cls in (UniformNegativeSampler, RowByRow):
        objective = _objective("complex", False, False)
        sampler = sampler_cls(E, K, R, seed=1, chunk_size=8)
        trainer = Trainer(objective, NegativeSampling(sampler), triples, num_steps=6, batch_size=20,
                          optimizer=OptimizerSchedule("sgd", 0.05), progress=False)
        traces.append([trainer.train_step()["loss"] for _ in range(6)])
    assert traces[0] == pytest.approx(traces[1], rel=1e-12)


def test_a_run_that_will_fuse_loads_the_kernels_before_training_and_says_so():
    assert _objective("distmult", False, False).kernel_note(torch.device("cpu")).startswith(
        "EMU: fused kernels loaded in ")
    assert _objective("conve", False, False).kernel_note(torch.device("cpu")) is None   # no candidate form
    from dgl_emu.nn.emu import EmbeddingMixup
    mixup = Objective(_objective("distmult", False, False).model, EMULoss(), EmbeddingMixup())
    assert mixup.kernel_note(torch.device("cpu")) is None
