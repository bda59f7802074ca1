"""Sparse (row-gradient) training: exact for Adagrad, lazy for Adam, every interaction and sampler."""
from __future__ import annotations

import pytest
import torch

from dgl_emu.data import generate_cyclic_kg
from dgl_emu.losses import CrossEntropyLoss, EMULoss
from dgl_emu.models import KGEModel
from dgl_emu.nn.emu import EmbeddingMutation
from dgl_emu.nn.encoders import SPARSE_FROM_ENTITIES, LookupEncoder
from dgl_emu.nn.interactions import INTERACTIONS
from dgl_emu.sampling import SAMPLERS
from dgl_emu.training import Callback, CombinedOptimizer, NegativeSampling, Objective, OptimizerSchedule, Trainer

KG = generate_cyclic_kg(num_rings=4, ring_size=8)
E, R = KG.num_entities, KG.num_relations


#: TransD at d = 8 with the default gamma starts its relations in U(-1.75, 1.75), wider than any
#: difference of its unit-norm projected entities: a relation coordinate with the same sign in every
#: candidate's L1 term has a zero gradient (the softmax weights sum to one), up to rounding, which
#: Adagrad normalises to steps of +-lr. A narrower start (gamma 2: U(-0.5, 0.5)) trains non-degenerately.
OPTIONS = {"transd": {"gamma": 2.0}}


def _trainer(sparse, *, name="distmult", sampler="uniform", emu=True, optimizer=None, steps=50,
             run_dir=None, callbacks=(), batch_size=32, **options):
    inter = INTERACTIONS.get(name)(dim=8, **OPTIONS.get(name, {}))
    model = KGEModel(LookupEncoder(E, R, inter, torch.Generator().manual_seed(0), sparse=sparse), inter)
    neg = SAMPLERS.make(sampler, {"num_negatives": 8, **({"k": 2, "num_walks": 20} if sampler == "sans" else {}),
                                  **options},
                        {"kg": KG, "num_entities": E, "num_relations": R, "seed": 1})
    objective = (Objective(model, EMULoss(0.53, 0.11), EmbeddingMutation(0.39, seed=2)) if emu
                 else Objective(model, CrossEntropyLoss()))
    return Trainer(objective, NegativeSampling(neg), KG.splits["train"], num_steps=steps, batch_size=batch_size,
                   optimizer=optimizer or OptimizerSchedule("adagrad", 0.1), progress=False,
                   run_dir=run_dir, eval_every=10 if run_dir else None, callbacks=callbacks)


def test_sparse_gradients_are_row_gradients():
    tr = _trainer(True, steps=1, batch_size=1)   # one triple, 8 negatives: at most 10 of 32 rows
    tr.train_step()
    grad = tr.model.encoder.entity.grad          # the step's gradient (kept until the next zero_grad)
    rows = grad.coalesce().indices()[0]
    assert grad.is_sparse and 0 < len(rows) < E  # only the rows the batch touched
    assert _trainer(False, steps=1).fit().model.encoder.entity.grad.layout is torch.strided


@pytest.mark.parametrize("emu", [True, False])
def test_sparse_adagrad_equals_dense_adagrad(emu):
    """Row-wise Adagrad is exact: 50 steps give the dense weights to float tolerance."""
    dense, sparse = _trainer(False, emu=emu).fit(), _trainer(True, emu=emu).fit()
    assert not dense.model.encoder.sparse and sparse.model.encoder.sparse
    for (name, a), b in zip(dense.model.named_parameters(), sparse.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    start = _trainer(False).model.encoder.entity
    assert not torch.allclose(start, sparse.model.encoder.entity)   # it did train


@pytest.mark.parametrize("name", INTERACTIONS.names())
def test_every_interaction_on_the_sparse_path(name):
    """The tables (the sparse path) agree, and so does every other parameter except ConvE's batch
    norm inputs: its biases in front of a batch norm have a zero gradient up to rounding, which
    Adagrad normalises to steps of +-lr, so they (and the norm after them) follow the rounding."""
    dense, sparse = _trainer(False, name=name, steps=5).fit(), _trainer(True, name=name, steps=5).fit()
    for (pname, a), b in zip(dense.model.named_parameters(), sparse.model.parameters()):
        if pname.startswith("encoder.") or name != "conve":
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=pname)


@pytest.mark.parametrize("sampler", SAMPLERS.names())
def test_every_sampler_on_the_sparse_path(sampler):
    dense = _trainer(False, sampler=sampler, steps=5).fit()
    sparse = _trainer(True, sampler=sampler, steps=5).fit()
    torch.testing.assert_close(dense.model.encoder.entity, sparse.model.encoder.entity, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sampler", ["uniform", "bernoulli"])
def test_shared_negatives_on_the_sparse_path(sampler):
    """Chunked (shared) negatives: exact on the sparse path too, and they train."""
    dense = _trainer(False, sampler=sampler, steps=20, chunk_size=8).fit()
    sparse = _trainer(True, sampler=sampler, steps=20, chunk_size=8).fit()
    torch.testing.assert_close(dense.model.encoder.entity, sparse.model.encoder.entity, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(_trainer(False).model.encoder.entity, sparse.model.encoder.entity)


def test_lazy_adam_updates_only_the_rows_of_the_batch():
    tr = _trainer(True, optimizer=OptimizerSchedule("adam", 0.01), steps=1, emu=False, batch_size=1)
    assert isinstance(tr.optimizer, CombinedOptimizer)
    assert isinstance(tr.optimizer.optimizers[0], torch.optim.SparseAdam)
    before = tr.model.encoder.entity.detach().clone()
    seen = set()
    hrt = tr.next_batch()
    tr.cursor -= len(hrt)  # the step below draws the same batch
    tr.train_step()
    seen.update(hrt[:, 0].tolist() + hrt[:, 2].tolist())
    changed = set((tr.model.encoder.entity.detach() != before).any(1).nonzero().squeeze(1).tolist())
    untouched = set(range(E)) - changed
    assert changed and untouched   # negatives touch more rows than the positives, never all of them
    assert seen <= changed
    # dense Adam moves every row that has a gradient, and differs from the lazy update after a step
    dense = _trainer(False, optimizer=OptimizerSchedule("adam", 0.01), steps=3, emu=False).fit()
    lazy = _trainer(True, optimizer=OptimizerSchedule("adam", 0.01), steps=3, emu=False).fit()
    assert not torch.allclose(dense.model.encoder.entity, lazy.model.encoder.entity)


def test_sparse_run_with_the_adam_switch_resumes_bit_identically(tmp_path):
    schedule = OptimizerSchedule("adagrad", 0.1, switch_step=20)

    class Stop(Callback):
        def on_step_end(self, trainer, record):
            if record["step"] == 30:
                trainer.stop("test")

    whole = _trainer(True, optimizer=schedule, steps=40, run_dir=tmp_path / "a").fit()
    _trainer(True, optimizer=schedule, steps=40, run_dir=tmp_path / "b", callbacks=[Stop()]).fit()
    again = _trainer(True, optimizer=schedule, steps=40, run_dir=tmp_path / "b")
    assert again.resume() and again.step == 30 and isinstance(again.optimizer, CombinedOptimizer)
    again.fit()
    for (name, a), b in zip(whole.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_default_is_chosen_by_the_size_of_the_table():
    inter = INTERACTIONS.get("distmult")(dim=2)
    assert not LookupEncoder(1000, 2, inter).sparse
    assert LookupEncoder(SPARSE_FROM_ENTITIES, 2, inter).sparse
    assert not LookupEncoder(SPARSE_FROM_ENTITIES, 2, inter, sparse=False).sparse
