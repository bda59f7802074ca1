"""CUDA paths (skipped without a CUDA device; ``benchmarks/gpu_check.sh`` runs them on a GPU)."""
from __future__ import annotations

import pytest
import torch

from dgl_emu.config import RunConfig
from dgl_emu.counter_rng import counter_mask, draw_key
from dgl_emu.data import generate_cyclic_kg
from dgl_emu.evaluation import RankBasedEvaluator
from dgl_emu.models import KGEModel
from dgl_emu.nn.emu import EmbeddingMutation
from dgl_emu.rng import bernoulli_mask
from dgl_emu.nn.interactions import DistMult
from dgl_emu.pipeline import run

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]
CUDA = torch.device("cuda")


def test_emu_mask_on_the_gpu_is_seeded_and_has_the_keep_rate():
    a = bernoulli_mask((512, 64, 100), 0.39, torch.Generator(device=CUDA).manual_seed(0), CUDA)
    b = bernoulli_mask((512, 64, 100), 0.39, torch.Generator(device=CUDA).manual_seed(0), CUDA)
    assert a.device.type == "cuda" and torch.equal(a, b)
    assert abs(a.double().mean().item() - 0.39) < 0.002
    emu = EmbeddingMutation(0.39, seed=3)
    pos, neg = torch.randn(8, 1, 16, device=CUDA), torch.randn(8, 4, 16, device=CUDA, requires_grad=True)
    emu(pos, neg).sum().backward()
    assert neg.grad.device.type == "cuda"


def test_emu_counter_mask_is_the_same_on_the_gpu():
    """The counter-based bits are a function of their coordinates: the GPU's equal the CPU's, and
    the layer's first draw on the GPU is the formula's."""
    key = draw_key(3, 0)
    cpu = counter_mask(key, 17, (64, 32, 100), 0.39)
    gpu = counter_mask(key, 17, (64, 32, 100), 0.39, device=CUDA)
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
    pos, neg = torch.zeros(64, 1, 100, device=CUDA), torch.ones(64, 32, 100, device=CUDA)
    out = EmbeddingMutation(0.39, seed=3)(pos, neg)
    assert torch.equal(out.cpu(), counter_mask(key, 0, (64, 32, 100), 0.39, dtype=torch.float32))


def test_evaluation_on_the_gpu_equals_the_cpu():
    kg = generate_cyclic_kg()
    model = KGEModel.shallow(DistMult(dim=16), kg.num_entities, kg.num_relations,
                             torch.Generator().manual_seed(0)).eval()
    ev = RankBasedEvaluator(kg.filter_index(), batch_size=64)
    cpu = ev.evaluate(model.scorer(), kg.splits["test"], num_entities=kg.num_entities)
    gpu = ev.evaluate(model.to(CUDA).scorer(), kg.splits["test"], device=CUDA, num_entities=kg.num_entities)
    assert cpu.get("mrr") == pytest.approx(gpu.get("mrr"), rel=1e-5)


@pytest.mark.parametrize("sparse", [False, True])
def test_training_on_the_gpu(tmp_path, sparse):
    cfg = RunConfig.from_dict({"model": "distmult", "dim": 16, "steps": 60, "eval_every": 30, "device": "cuda",
                               "encoder": {"name": "lookup", "sparse": sparse}, "progress": False,
                               "output": str(tmp_path / "run")})
    metrics = run(cfg).metrics
    assert metrics["steps"] == 60 and metrics["test"]["both"]["realistic"]["mrr"] > 0.05


def test_the_compiled_engine_on_the_gpu_equals_the_cpu_kernels():
    """CUDA's fused engine (torch.compile, Triton) scores the mutated negatives as the CPU's C++
    kernels do, gradients included, without forming them."""
    from dgl_emu.nn.fused import FusedKind, fused_scores, kernels
    from dgl_emu.nn.fused_engine import engine_for
    engine = engine_for(CUDA)
    if engine is None or kernels() is None:
        pytest.skip("no fused engine here (Triton or the C++ kernels missing)")
    g = torch.Generator().manual_seed(0)
    q, p = (torch.randn(64, 100, generator=g, requires_grad=True) for _ in range(2))
    n = torch.randn(64, 32, 100, generator=g, requires_grad=True)
    for kind in FusedKind:
        cpu = fused_scores(q, p, n, kind, draw_key(2, 5), 3, 0.39)
        qc, pc, nc = (x.detach().to(CUDA).requires_grad_() for x in (q, p, n))
        gpu = engine(qc, pc, nc, kind, draw_key(2, 5), 3, 0.39)
        for a, b in zip(gpu, cpu):
            torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-4)
        grads_cpu = torch.autograd.grad(cpu[0].sum() + cpu[1].sum(), (q, p, n))
        grads_gpu = torch.autograd.grad(gpu[0].sum() + gpu[1].sum(), (qc, pc, nc))
        for a, b in zip(grads_gpu, grads_cpu):
            torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-4)
