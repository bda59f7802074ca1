"""The torch.compile engine of the fused EMU scores (the CUDA engine), checked on the CPU, where
Inductor compiles the same graph to C++: its scores and gradients equal the C++ kernels', and an
objective scores the same loss with either engine. Which engine a device gets."""
from __future__ import annotations

import pytest
import torch

from dgl_emu.counter_rng import draw_key
from dgl_emu.nn import fused_compiled, fused_engine
from dgl_emu.nn.fused import FusedKind, fused_scores, kernels, unfused
from dgl_emu.nn.fused_compiled import compiled_scores
from dgl_emu.nn.fused_engine import engine_for, engine_note
from dgl_emu.training import step
from dgl_emu.typing import Target

from test_nn.test_fused import _batch, _inputs, _loss_and_grads, _objective

needs_kernels = pytest.mark.skipif(kernels() is None, reason="the fused kernels are not available here")


@pytest.mark.slow   # Inductor compiles a graph per comparison and chunking (a few seconds each)
@needs_kernels
@pytest.mark.parametrize("kind", list(FusedKind))
@pytest.mark.parametrize("chunk, phase", [(1, 0), (4, 3)])
def test_compiled_scores_and_gradients_equal_the_cpp_kernels(kind, chunk, phase):
    q, p, n = _inputs(kind, chunk, seed=5, phase=phase)
    w = torch.randn(q.shape[0], n.shape[1], dtype=q.dtype, generator=torch.Generator().manual_seed(1))
    for key, row0 in ((draw_key(0, 0), 0), (draw_key(9, 4), 11)):   # a new key: the same graph, no recompilation
        got = [compiled_scores(q, p, n, kind, key, row0, 0.39, True, chunk, phase),
               fused_scores(q, p, n, kind, key, row0, 0.39, True, chunk, phase)]
        for a, b in zip(*got):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        grads = [torch.autograd.grad((emu * w).sum() + (plain * w * w).sum(), (q, p, n)) for emu, plain in got]
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert ("cpu", torch.float64, int(kind)) in fused_compiled._STATE["first"]


@pytest.mark.slow
@needs_kernels
def test_an_objective_scores_the_same_loss_with_either_engine(monkeypatch):
    hrt, neg = _batch(False)
    want = _loss_and_grads(_objective("distmult", False, False), hrt, neg, Target.TAIL)
    monkeypatch.setattr(step, "engine_for", lambda device: compiled_scores)
    got = _loss_and_grads(_objective("distmult", False, False), hrt, neg, Target.TAIL)
    torch.testing.assert_close(got[0], want[0], rtol=1e-12, atol=1e-12)
    for a, b in zip(got[1], want[1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_each_device_gets_its_engine(monkeypatch):
    assert engine_for(torch.device("cpu")) is (fused_scores if kernels() is not None else None)
    with unfused():
        assert engine_for(torch.device("cpu")) is None
    assert engine_for(torch.device("meta")) is None
    monkeypatch.setattr(fused_engine, "compiled_available", lambda device: True)
    assert engine_for(torch.device("cuda")) is compiled_scores
    with unfused():
        assert engine_for(torch.device("cuda")) is None
    assert engine_note(torch.device("cuda")).startswith("fused by torch.compile (Inductor, Triton) on cuda")
    monkeypatch.setattr(fused_engine, "compiled_available", lambda device: False)
    assert engine_for(torch.device("cuda")) is None
    assert engine_note(torch.device("cuda")) == ("no fused engine on cuda (torch.compile needs Triton there): "
                                                 "EMU runs unfused (same bits, slower)")
    assert not fused_compiled.compiled_available(torch.device("cpu"))   # the CPU has the C++ kernels
