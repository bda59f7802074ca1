"""Shard-wise ranks: every shard scores its own rows, counts are summed, ranks equal the full matrix's."""
from __future__ import annotations

import pytest
import torch

from dgl_emu.data import generate_cyclic_kg
from dgl_emu.evaluation import RankBasedEvaluator
from dgl_emu.evaluation.ranks import ranks_from_counts
from dgl_emu.evaluation.shardwise import ShardRanker
from dgl_emu.models import KGEModel
from dgl_emu.nn.interactions import INTERACTIONS
from dgl_emu.typing import Target


def _model(name: str, kg):
    """Small integer embeddings: every score is exact in float64, and ties are frequent."""
    model = KGEModel.shallow(INTERACTIONS.get(name)(dim=4), kg.num_entities, kg.num_relations).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for table in (model.encoder.entity, model.encoder.relation):
            table.copy_(torch.randint(-2, 3, table.shape, generator=g).double())
    return model.eval()


def _ranks_by_shards(model, kg, triples, shards, filter_index, max_scores):
    reps = model.encode()
    rankers = [ShardRanker(model.interaction, ids, reps.entity[ids], kg.num_entities, filter_index,
                           batch_size=7, max_scores=max_scores) for ids in shards]
    out = {}
    for target in (Target.HEAD, Target.TAIL):
        greater, equal = [], []
        for start in range(0, len(triples), 7):
            hrt = triples[start:start + 7]
            anchor, rel = reps.entity[hrt[:, target.other.column]], reps.relation[hrt[:, 1]]
            true = sum(r.true_scores(anchor, rel, hrt, target) for r in rankers)   # the all-reduce, by hand
            counts = [r.counts(anchor, rel, hrt, target, true) for r in rankers]
            greater.append(sum(c[0] for c in counts))
            equal.append(sum(c[1] for c in counts))
        out[target] = ranks_from_counts(torch.cat(greater), torch.cat(equal))
    return out


@pytest.mark.parametrize("name", ["distmult", "transe"])
@pytest.mark.parametrize("filtered", [True, False])
@pytest.mark.parametrize("max_scores", [2 ** 26, 30])   # whole shards, or slices of 4 rows
def test_shards_rank_as_the_full_matrix(name, filtered, max_scores):
    kg = generate_cyclic_kg()
    model = _model(name, kg)
    triples = kg.splits["test"][:40]
    perm = torch.randperm(kg.num_entities, generator=torch.Generator().manual_seed(1))
    shards = list(torch.tensor_split(perm, 3))                      # three unequal, interleaved shards
    index = kg.filter_index() if filtered else None
    got = _ranks_by_shards(model, kg, triples, shards, index, max_scores)
    want = RankBasedEvaluator(index, batch_size=7).evaluate(model.scorer(), triples).ranks
    for target in got:
        for policy in want[target]:
            assert torch.equal(got[target][policy], want[target][policy]), (target, policy)
    assert any((want[t][p] != want[t][next(iter(want[t]))]).any() for t in want for p in want[t])  # ties occur


def test_one_shard_with_every_row_is_the_evaluator():
    kg = generate_cyclic_kg()
    model = _model("distmult", kg)
    reps = model.encode()
    ranker = ShardRanker(model.interaction, torch.arange(kg.num_entities), reps.entity, kg.num_entities,
                         kg.filter_index(), batch_size=64)
    triples = kg.splits["valid"]
    got = ranker.evaluate(triples, lambda ids: reps.entity[ids], reps.relation, lambda t: t)
    want = RankBasedEvaluator(kg.filter_index(), batch_size=64).evaluate(model.scorer(), triples)
    assert got.metrics() == want.metrics()


def test_shards_must_match_their_rows():
    with pytest.raises(ValueError, match="must match"):
        ShardRanker(None, torch.arange(3), torch.zeros(2, 4), 3)
