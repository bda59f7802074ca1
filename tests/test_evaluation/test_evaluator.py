"""RankBasedEvaluator against a brute-force Python oracle and against PyKEEN's RankBasedEvaluator."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dgl_emu.data import KnowledgeGraph, generate_cyclic_kg, load_dataset
from dgl_emu.evaluation import FULL_PROTOCOL, RankBasedEvaluator, SampledRankBasedEvaluator, TiePolicy, rank_metrics
from dgl_emu.typing import Target

SPLITS = ("train", "valid", "test")
POLICIES = tuple(TiePolicy)


class DistMultLike:
    """Random DistMult-style scorer with coarse, exactly representable values (many exact ties).

    Embeddings are multiples of 0.5 with |x| <= 1.5, so every score is an exact float64 sum: the same
    query gets bit-identical scores whatever the batch or entity slice, and ties are plentiful. The
    entities in ``minus_inf`` always score ``-inf`` (so some true scores are ``-inf`` and tie).
    """

    def __init__(self, num_entities, num_relations, dim=3, seed=0, minus_inf=(0, 5)):
        gen = torch.Generator().manual_seed(seed)
        self.ent = torch.randint(-3, 4, (num_entities, dim), generator=gen).double() / 2
        self.rel = torch.randint(-3, 4, (num_relations, dim), generator=gen).double() / 2
        self.minus_inf = list(minus_inf)
        self.calls = 0

    def full(self, hrt, target):
        anchor = self.ent[hrt[:, target.other.column]] * self.rel[hrt[:, 1]]
        scores = anchor @ self.ent.T
        scores[:, self.minus_inf] = float("-inf")
        return scores

    def __call__(self, hrt, target, entities=None):
        self.calls += 1
        scores = self.full(hrt, target)
        return scores if entities is None else scores[:, entities].clone()


def brute_force_ranks(kg, scorer, triples, filtered=True):
    """Plain Python loop per triple and side; filtering against every split through a Python set."""
    known = set()
    for s in SPLITS:
        known.update(map(tuple, kg.splits[s].tolist()))
    E = kg.num_entities
    out = {}
    for target in (Target.HEAD, Target.TAIL):
        col = target.column
        ranks = {p: [] for p in POLICIES}
        for h, r, t in triples.tolist():
            row = scorer.full(torch.tensor([[h, r, t]]), target)[0].tolist()
            true = (h, r, t)[col]
            greater = equal = 0
            for e in range(E):
                if e == true:
                    continue
                corrupted = (e, r, t) if target is Target.HEAD else (h, r, e)
                if filtered and corrupted in known:
                    continue
                greater += row[e] > row[true]
                equal += row[e] == row[true]
            ranks[TiePolicy.OPTIMISTIC].append(greater + 1.0)
            ranks[TiePolicy.PESSIMISTIC].append(greater + equal + 1.0)
            ranks[TiePolicy.REALISTIC].append(greater + equal / 2 + 1.0)
        out[target] = {p: torch.tensor(v, dtype=torch.float64) for p, v in ranks.items()}
    return out


@pytest.fixture(scope="module")
def kg():
    return generate_cyclic_kg(num_rings=3, ring_size=6)


@pytest.fixture(scope="module")
def scorer(kg):
    return DistMultLike(kg.num_entities, kg.num_relations)


@pytest.fixture(scope="module")
def eval_triples(kg):
    return torch.cat([kg.splits["valid"], kg.splits["test"]])


def _assert_same_ranks(a, b):
    assert set(a) == set(b)
    for target in a:
        for p in POLICIES:
            assert torch.equal(a[target][p], b[target][p]), (target, p)


# ---------------------------------------------------------------------- (a) brute-force oracle
def test_scorer_has_ties_and_minus_inf_true_scores(kg, scorer, eval_triples):
    """Guard: the oracle test below must actually exercise ties and -inf true scores."""
    s = scorer.full(eval_triples, Target.TAIL)
    true = s[torch.arange(len(eval_triples)), eval_triples[:, 2]]
    ties = (s == true[:, None]).sum(1) - 1
    assert (ties > 0).float().mean() > 0.3
    assert torch.isinf(true).any() or torch.isinf(
        scorer.full(eval_triples, Target.HEAD)[torch.arange(len(eval_triples)), eval_triples[:, 0]]).any()


@pytest.mark.parametrize("filtered", [True, False])
def test_matches_brute_force(kg, scorer, eval_triples, filtered):
    ev = RankBasedEvaluator(kg.filter_index() if filtered else None, batch_size=5)
    res = ev.evaluate(scorer, eval_triples)
    want = brute_force_ranks(kg, scorer, eval_triples, filtered=filtered)
    _assert_same_ranks(res.ranks, want)
    assert torch.equal(res.relations, eval_triples[:, 1])
    # and the metrics are those of the oracle ranks
    m = res.metrics()
    for p in POLICIES:
        both = torch.cat([want[Target.HEAD][p], want[Target.TAIL][p]])
        assert m["both"][p.value] == rank_metrics(both)
        assert m["head"][p.value] == rank_metrics(want[Target.HEAD][p])


def test_brute_force_on_train_triples_with_minus_inf(kg, scorer):
    """Train triples whose true entity is an always -inf entity: ranks tie with the other -inf entity."""
    train = kg.splits["train"]
    pick = train[(train[:, 2] == 0) | (train[:, 0] == 5)]
    assert len(pick) > 0
    res = RankBasedEvaluator(kg.filter_index(), batch_size=3).evaluate(scorer, pick)
    _assert_same_ranks(res.ranks, brute_force_ranks(kg, scorer, pick))
    tails = res.ranks[Target.TAIL]
    minus = pick[:, 2] == 0
    # a -inf true tail is ranked below every finite candidate; ties only with the other -inf entity
    assert (tails[TiePolicy.PESSIMISTIC][minus] - tails[TiePolicy.OPTIMISTIC][minus]).max() <= 1


def test_filtering_only_changes_ranks_downwards(kg, scorer, eval_triples):
    raw = RankBasedEvaluator(None).evaluate(scorer, eval_triples)
    filt = RankBasedEvaluator(kg.filter_index()).evaluate(scorer, eval_triples)
    for t in (Target.HEAD, Target.TAIL):
        for p in POLICIES:
            assert (filt.ranks[t][p] <= raw.ranks[t][p]).all()
        assert (filt.ranks[t][TiePolicy.OPTIMISTIC] >= 1).all()
        assert (filt.ranks[t][TiePolicy.PESSIMISTIC] <= kg.num_entities).all()


def test_docstring_example_value():
    emb = torch.eye(3)

    def score(hrt, target, entities=None):
        return emb[hrt[:, target.other.column]] @ emb.T

    res = RankBasedEvaluator(filter_index=None).evaluate(score, torch.tensor([[0, 0, 0], [1, 0, 2]]))
    assert res.get("mrr", side="tail") == pytest.approx(0.7, abs=1e-12)
    assert res.ranks[Target.TAIL][TiePolicy.REALISTIC].tolist() == [1.0, 2.5]


# ---------------------------------------------------------------------- (b) batching equivalences
@pytest.mark.parametrize("entity_batch_size", [7, 1, 5, 18, 100])
def test_entity_chunking_identical(kg, scorer, eval_triples, entity_batch_size):
    ref = RankBasedEvaluator(kg.filter_index(), batch_size=8).evaluate(scorer, eval_triples)
    ev = RankBasedEvaluator(kg.filter_index(), batch_size=8, entity_batch_size=entity_batch_size)
    res = ev.evaluate(scorer, eval_triples, num_entities=kg.num_entities)
    _assert_same_ranks(res.ranks, ref.ranks)
    assert res.metrics() == ref.metrics()


def test_entity_chunking_scores_each_slice(kg, scorer, eval_triples):
    """Two passes over ceil(E / 7) = 3 slices per side and query batch."""
    s = DistMultLike(kg.num_entities, kg.num_relations)
    ev = RankBasedEvaluator(kg.filter_index(), batch_size=1000, entity_batch_size=7)
    res = ev.evaluate(s, eval_triples, num_entities=kg.num_entities)
    assert s.calls == 2 * 2 * 3
    _assert_same_ranks(res.ranks, brute_force_ranks(kg, s, eval_triples))


def test_entity_chunking_needs_num_entities(kg, scorer, eval_triples):
    ev = RankBasedEvaluator(kg.filter_index(), entity_batch_size=7)
    with pytest.raises(ValueError, match="num_entities"):
        ev.evaluate(scorer, eval_triples)


def test_query_batch_size_identical(kg, scorer, eval_triples):
    one = RankBasedEvaluator(kg.filter_index(), batch_size=1).evaluate(scorer, eval_triples)
    many = RankBasedEvaluator(kg.filter_index(), batch_size=1000).evaluate(scorer, eval_triples)
    odd = RankBasedEvaluator(kg.filter_index(), batch_size=7, entity_batch_size=4).evaluate(
        scorer, eval_triples, num_entities=kg.num_entities)
    _assert_same_ranks(one.ranks, many.ranks)
    _assert_same_ranks(odd.ranks, many.ranks)


def test_single_side_and_custom_ks(kg, scorer, eval_triples):
    both = RankBasedEvaluator(kg.filter_index()).evaluate(scorer, eval_triples)
    tail = RankBasedEvaluator(kg.filter_index(), sides=(Target.TAIL,), ks=(2, 5)).evaluate(scorer, eval_triples)
    assert set(tail.ranks) == {Target.TAIL}
    for p in POLICIES:
        assert torch.equal(tail.ranks[Target.TAIL][p], both.ranks[Target.TAIL][p])
    m = tail.metrics()
    assert set(m) == {"tail", "both", "protocol"} and m["both"] == m["tail"]
    assert m["protocol"] == FULL_PROTOCOL
    assert set(m["tail"]["realistic"]) == {"mr", "mrr", "hits@2", "hits@5", "count"}


@pytest.mark.parametrize("entity_batch_size", [None, 4])
def test_nan_true_score_raises(kg, eval_triples, entity_batch_size):
    def nan_scorer(hrt, target, entities=None):
        s = torch.zeros(len(hrt), kg.num_entities, dtype=torch.float64)
        s[:, eval_triples[0, 2]] = float("nan")
        return s if entities is None else s[:, entities]

    ev = RankBasedEvaluator(kg.filter_index(), entity_batch_size=entity_batch_size, sides=(Target.TAIL,))
    with pytest.raises(ValueError, match="NaN"):
        ev.evaluate(nan_scorer, eval_triples[:1], num_entities=kg.num_entities)


def test_invalid_batch_sizes():
    with pytest.raises(ValueError):
        RankBasedEvaluator(None, batch_size=0)
    with pytest.raises(ValueError):
        RankBasedEvaluator(None, entity_batch_size=0)


# ---------------------------------------------------------------------- (c) PyKEEN oracle
def pykeen_evaluate(kg, scorer, triples, batch_size=16):
    """Feed PyKEEN's RankBasedEvaluator the same score matrices, filtered the way PyKEEN filters them.

    Mirrors ``pykeen.evaluation.evaluator._evaluate_batch``: read the true scores, set every known
    positive (PyKEEN's own sparse filter over all splits) to NaN, write the true scores back.
    """
    pytest.importorskip("pykeen")
    from pykeen.evaluation import RankBasedEvaluator as PK
    from pykeen.evaluation.evaluator import create_sparse_positive_filter_, filter_scores_

    all_pos = torch.cat([kg.splits[s] for s in SPLITS])
    pk = PK(filtered=True, clear_on_finalize=False)
    for start in range(0, len(triples), batch_size):
        hrt = triples[start:start + batch_size]
        rows = torch.arange(len(hrt))
        for target in (Target.HEAD, Target.TAIL):
            col = target.column
            scores = scorer.full(hrt, target)
            true_scores = scores[rows, hrt[:, col]].clone()
            positive_filter, _ = create_sparse_positive_filter_(hrt_batch=hrt, all_pos_triples=all_pos,
                                                                filter_col=col)
            scores = filter_scores_(scores=scores.clone(), filter_batch=positive_filter)
            scores[rows, hrt[:, col]] = true_scores
            pk.process_scores_(hrt_batch=hrt, target=target.value, scores=scores,
                               true_scores=true_scores[:, None], dense_positive_mask=None)
    # PyKEEN stores realistic ranks as float32 (exact here: half-integers far below 2**24) and then
    # averages reciprocals in float32 (~1e-8 relative error). Widen the same values to float64 so its
    # metric code can be compared with ours to 1e-9; the ranks themselves are compared exactly.
    for key, parts in pk.ranks.items():
        widened = [np.asarray(a, dtype=np.float64) for a in parts]
        assert all(np.array_equal(w, a) for w, a in zip(widened, parts))
        pk.ranks[key] = widened
    ranks = {t: {p: torch.as_tensor(np.concatenate(pk.ranks[t.value, p.value]))
                 for p in POLICIES} for t in (Target.HEAD, Target.TAIL)}
    return pk.finalize(), ranks


PK_METRICS = {"mrr": "inverse_harmonic_mean_rank", "mr": "arithmetic_mean_rank",
              "hits@1": "hits_at_1", "hits@3": "hits_at_3", "hits@10": "hits_at_10"}


def check_same_as_pykeen(kg, scorer, triples, **ev_kwargs):
    ours = RankBasedEvaluator(kg.filter_index(), **ev_kwargs).evaluate(
        scorer, triples, num_entities=kg.num_entities)
    theirs, pk_ranks = pykeen_evaluate(kg, scorer, triples)
    _assert_same_ranks(ours.ranks, pk_ranks)
    m = ours.metrics()
    checked = 0
    for side in ("head", "tail", "both"):
        for p in POLICIES:
            for key, pk_key in PK_METRICS.items():
                want = theirs.get_metric(f"{side}.{p.value}.{pk_key}")
                assert m[side][p.value][key] == pytest.approx(want, rel=1e-9, abs=1e-9), (side, p, key)
                checked += 1
    assert checked == 3 * 3 * 5
    return ours


def test_pykeen_oracle_generated_kg(kg, scorer, eval_triples):
    ours = check_same_as_pykeen(kg, scorer, eval_triples, batch_size=9)
    # with this many ties the policies really differ, so the comparison above is not vacuous
    m = ours.metrics()["both"]
    assert m["optimistic"]["mrr"] > m["realistic"]["mrr"] > m["pessimistic"]["mrr"]


def test_pykeen_oracle_generated_kg_chunked(kg, scorer, eval_triples):
    check_same_as_pykeen(kg, scorer, eval_triples, batch_size=4, entity_batch_size=7)


def test_pykeen_oracle_nations(require_dataset):
    """A real dataset: Nations (14 entities, so a random scorer produces many ties)."""
    root = require_dataset("nations").parent
    kg = load_dataset("nations", root)
    scorer = DistMultLike(kg.num_entities, kg.num_relations, dim=2, seed=3, minus_inf=(4,))
    check_same_as_pykeen(kg, scorer, kg.splits["test"], batch_size=64)


# ---------------------------------------------------------------------- (d) per-relation results
def test_per_relation_partitions_the_triples(kg, scorer, eval_triples):
    res = RankBasedEvaluator(kg.filter_index()).evaluate(scorer, eval_triples)
    per = res.per_relation(kg.relation_labels)
    present = sorted(set(eval_triples[:, 1].tolist()))
    assert sorted(per) == sorted(kg.relation_labels[r] for r in present)
    total = 0
    for rid in present:
        mask = eval_triples[:, 1] == rid
        sub = per[kg.relation_labels[rid]]
        n = int(mask.sum())
        assert sub["head"]["realistic"]["count"] == n and sub["both"]["pessimistic"]["count"] == 2 * n
        for p in POLICIES:
            assert sub["tail"][p.value] == rank_metrics(res.ranks[Target.TAIL][p][mask], res.ks)
        total += n
    assert total == len(eval_triples)
    # count-weighted per-relation MR / MRR recombine into the global values
    for key in ("mr", "mrr", "hits@3"):
        glob = res.metrics()["both"]["realistic"][key]
        recombined = sum(v["both"]["realistic"][key] * v["both"]["realistic"]["count"] for v in per.values())
        assert recombined / (2 * len(eval_triples)) == pytest.approx(glob, rel=1e-12)


def test_per_relation_without_labels_uses_ids():
    tiny = KnowledgeGraph.from_id_triples({"train": [[0, 0, 1], [1, 1, 2]]}, 3, 2)
    scorer = DistMultLike(3, 2, minus_inf=())
    res = RankBasedEvaluator(tiny.filter_index(), ks=(1,)).evaluate(scorer, tiny.splits["train"])
    per = res.per_relation()
    assert set(per) == {"0", "1"}
    assert all(v["both"]["optimistic"]["count"] == 2 for v in per.values())


# ---------------------------------------------------------------------- memory budget, sampled protocol
def test_entity_slices_from_the_memory_budget_give_the_same_ranks(kg, scorer, eval_triples):
    full = RankBasedEvaluator(kg.filter_index(), batch_size=8).evaluate(scorer, eval_triples,
                                                                       num_entities=kg.num_entities)
    tiny = RankBasedEvaluator(kg.filter_index(), batch_size=8, max_scores=8 * 5)  # 5 entities per slice
    sliced = tiny.evaluate(scorer, eval_triples, num_entities=kg.num_entities)
    _assert_same_ranks(full.ranks, sliced.ranks)


def _model_scorer(kg):
    from dgl_emu.models import KGEModel
    from dgl_emu.nn.interactions import DistMult
    model = KGEModel.shallow(DistMult(dim=6), kg.num_entities, kg.num_relations,
                             torch.Generator().manual_seed(0)).eval()
    return model.scorer()


def test_sampled_evaluation_with_every_entity_equals_the_filtered_evaluation(kg, eval_triples):
    scorer = _model_scorer(kg)
    full = RankBasedEvaluator(kg.filter_index()).evaluate(scorer, eval_triples, num_entities=kg.num_entities)
    for n in (kg.num_entities - 1, kg.num_entities, 10 * kg.num_entities):
        sampled = SampledRankBasedEvaluator(kg.filter_index(), num_negatives=n).evaluate(
            scorer, eval_triples, num_entities=kg.num_entities)
        _assert_same_ranks(full.ranks, sampled.ranks)
        assert sampled.metrics()["protocol"].startswith("sampled: all")


def test_sampled_negatives_never_hit_a_known_answer_and_rank_by_hand(kg, eval_triples):
    scorer = _model_scorer(kg)
    ev = SampledRankBasedEvaluator(kg.filter_index(), num_negatives=5, seed=3)
    res = ev.evaluate(scorer, eval_triples, num_entities=kg.num_entities)
    assert res.metrics()["protocol"] == "sampled: 5 uniform negatives per query (known answers excluded), seed 3"
    gen = torch.Generator().manual_seed(3)
    for target in Target:   # the same draws again, ranked by hand
        neg = ev._draw(eval_triples, target, kg.num_entities, gen)
        triples = eval_triples.unsqueeze(1).expand(-1, 5, -1).clone()
        triples[..., target.column] = neg
        assert not kg.filter_index().contains(triples).any()
        true = scorer.candidates(eval_triples, target, eval_triples[:, target.column:target.column + 1])
        scores = scorer.candidates(eval_triples, target, neg)
        expected = 1 + (scores > true).sum(1) + 0.5 * (scores == true).sum(1)
        torch.testing.assert_close(res.ranks[target][TiePolicy.REALISTIC].double(), expected.double())
    # given negatives (ogbl-wikikg2's protocol) are used as they are
    given = {t: torch.zeros(len(eval_triples), 2, dtype=torch.long) for t in Target}
    res = ev.evaluate(scorer, eval_triples, num_entities=kg.num_entities, negatives=given)
    assert res.protocol == "sampled: the dataset's given negatives per query"
