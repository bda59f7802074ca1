"""The scale benchmark's measurements, each in its own process so its peak memory is its own.

    python -m benchmarks.speedlib.scale step E dense|sparse|shared plain|emu STEPS -> JSON: median s/step, peak RSS
    python -m benchmarks.speedlib.scale eval E TRIPLES                      -> JSON: seconds, peak RSS of an evaluation

Generated KGs (:func:`dgl_emu.data.generate_large_kg`, 2E training triples, Zipf-skewed degrees),
DistMult d=100, batch 1000, 256 uniform negatives, Adagrad at lr 0.1. ``shared``: sparse tables,
and the negatives shared by chunks of 256 positives (``UniformNegativeSampler(chunk_size=256)``,
DGL-KE's default chunking).
"""
from __future__ import annotations

import json
import resource
import sys
import time

import torch

from dgl_emu.data import generate_large_kg
from dgl_emu.losses import CrossEntropyLoss, EMULoss
from dgl_emu.models import KGEModel
from dgl_emu.nn.emu import EmbeddingMutation
from dgl_emu.nn.encoders import LookupEncoder
from dgl_emu.nn.interactions import DistMult
from dgl_emu.sampling import UniformNegativeSampler
from dgl_emu.training import NegativeSampling, Objective, OptimizerSchedule, Trainer
from dgl_emu.utils import tune_cpu_allocator

DIM, BATCH, NEGATIVES = 100, 1000, 256
#: tables of a setting: dense, sparse, or sparse with negatives shared by chunks of positives
MODES = ("dense", "sparse", "shared")
SHARED_CHUNK = 256


def peak_rss_gb() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def _kg(num_entities: int):
    return generate_large_kg(num_entities, 2 * num_entities, 200, num_valid=1000, num_test=1000, seed=0)


def step(num_entities: int, mode: str, emu: bool, steps: int, warmup: int = 3, device: str = "cpu") -> dict:
    """Median seconds per training step of one model (plain or EMU), and the process's peak memory."""
    sparse = mode != "dense"
    tune_cpu_allocator()
    kg = _kg(num_entities)
    inter = DistMult(dim=DIM)
    model = KGEModel(LookupEncoder(kg.num_entities, kg.num_relations, inter,
                                   torch.Generator().manual_seed(0), sparse=sparse), inter).to(device)
    objective = (Objective(model, EMULoss(0.53, 0.11), EmbeddingMutation(0.39, seed=2)) if emu
                 else Objective(model, CrossEntropyLoss()))
    sampler = UniformNegativeSampler(kg.num_entities, NEGATIVES, kg.num_relations, seed=1,
                                     chunk_size=SHARED_CHUNK if mode == "shared" else None)
    trainer = Trainer(objective, NegativeSampling(sampler), kg.splits["train"], num_steps=warmup + steps, batch_size=BATCH,
                      optimizer=OptimizerSchedule("adagrad", 0.1), progress=False, device=torch.device(device))
    times = []
    for i in range(warmup + steps):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.train_step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return {"entities": num_entities, "tables": mode, "sparse": sparse, "emu": emu, "timed_steps": steps, "device": device,
            "seconds": sorted(times)[steps // 2], "peak_rss_gb": round(peak_rss_gb(), 3)}


def evaluate(num_entities: int, triples: int) -> dict:
    """A filtered evaluation of ``triples`` test triples, both sides, of a (random) model, as
    ``dgl-emu evaluate`` runs it (default score slices, no allocator tuning)."""
    from dgl_emu.evaluation import RankBasedEvaluator
    kg = _kg(num_entities)
    inter = DistMult(dim=DIM)
    model = KGEModel.shallow(inter, kg.num_entities, kg.num_relations, torch.Generator().manual_seed(0)).eval()
    test = kg.splits["test"][:triples]
    start = time.perf_counter()
    evaluator = RankBasedEvaluator(kg.filter_index(), batch_size=256)
    result = evaluator.evaluate(model.scorer(), test, num_entities=kg.num_entities)
    return {"entities": num_entities, "test_triples": len(test), "ranks": 2 * len(test),
            "seconds": time.perf_counter() - start, "mrr_random_model": result.get("mrr"),
            "peak_rss_gb": round(peak_rss_gb(), 3)}


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "step":
        device = sys.argv[6] if len(sys.argv) > 6 else "cpu"
        if sys.argv[3] not in MODES:
            raise SystemExit(f"tables must be one of {MODES}, not {sys.argv[3]!r}")
        print(json.dumps(step(int(sys.argv[2]), sys.argv[3], sys.argv[4] == "emu", int(sys.argv[5]),
                              device=device)))
    elif what == "eval":
        print(json.dumps(evaluate(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        raise SystemExit(f"unknown measurement {what!r}")
