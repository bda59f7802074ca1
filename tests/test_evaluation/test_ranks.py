"""Rank computation with ties, -inf, filtering; rank metrics; EvaluationResult bookkeeping."""
from __future__ import annotations

import math

import pytest
import torch

from dgl_emu.evaluation import (EvaluationResult, TiePolicy, compute_ranks, count_greater_equal, rank_metrics,
                                ranks_from_counts)
from dgl_emu.typing import Target

INF = float("inf")
NAN = float("nan")
O, P, R = TiePolicy.OPTIMISTIC, TiePolicy.PESSIMISTIC, TiePolicy.REALISTIC


def _ranks(scores, true, filtered=None):
    s = torch.tensor(scores, dtype=torch.float64)
    f = None if filtered is None else (torch.tensor(filtered[0]), torch.tensor(filtered[1]))
    r = compute_ranks(s, torch.tensor(true), f)
    return {p: r[p].tolist() for p in TiePolicy}


# ---------------------------------------------------------------------- hand-computed ranks
@pytest.mark.parametrize("scores, true, opt, pess, real", [
    # one better (0.9), one tie (0.5): optimistic 2, pessimistic 3, realistic 2.5
    ([0.5, 0.9, 0.5, 0.1], 0, 2, 3, 2.5),
    # no tie, strictly best
    ([0.5, 0.9, 0.5, 0.1], 1, 1, 1, 1.0),
    # strictly worst of 4
    ([0.5, 0.9, 0.5, 0.1], 3, 4, 4, 4.0),
    # all four tied: 1 .. 4, expected 2.5
    ([2.0, 2.0, 2.0, 2.0], 2, 1, 4, 2.5),
    # true score -inf tied with another -inf; two finite candidates above
    ([-INF, 1.0, -INF, 0.0], 2, 3, 4, 3.5),
    # true score -inf tied with every other candidate (all -inf)
    ([-INF, -INF, -INF], 1, 1, 3, 2.0),
    # -inf candidates never outrank or tie with a finite true score
    ([-INF, 2.0, -INF, -INF, -5.0], 4, 2, 2, 2.0),
    # +inf true score tied with another +inf
    ([INF, 3.0, INF], 2, 1, 2, 1.5),
    # a NaN candidate (e.g. an invalid score) is ignored rather than counted
    ([NAN, 1.0, 0.0], 2, 2, 2, 2.0),
])
def test_hand_computed_ranks(scores, true, opt, pess, real):
    r = _ranks([scores], [true])
    assert r == {O: [opt], P: [pess], R: [real]}


def test_batch_of_rows_independent():
    r = _ranks([[0.5, 0.9, 0.5, 0.1], [-INF, 1.0, -INF, 0.0]], [0, 2])
    assert r == {O: [2.0, 3.0], P: [3.0, 4.0], R: [2.5, 3.5]}


def test_filtering_removes_known_positives_but_never_the_true_one():
    # scores: the true entity 0 scores 3; known positives 1 (5) and 3 (4) are filtered;
    # entity 2 and 4 tie with it. The filter list also names the true entity itself.
    scores = [[3.0, 5.0, 3.0, 4.0, 3.0]]
    assert _ranks(scores, [0]) == {O: [3.0], P: [5.0], R: [4.0]}  # raw
    r = _ranks(scores, [0], ([0, 0, 0], [1, 3, 0]))
    assert r == {O: [1.0], P: [3.0], R: [2.0]}


def test_filtering_a_tied_candidate():
    scores = [[3.0, 5.0, 3.0, 4.0, 3.0]]
    r = _ranks(scores, [0], ([0], [2]))  # filter one of the tied candidates
    assert r == {O: [3.0], P: [4.0], R: [3.5]}


def test_filtering_with_minus_inf_true_score():
    # the true entity scores -inf; -inf candidates 1 (filtered) and 2 (kept) tie with it; 3 is above
    r = _ranks([[-INF, -INF, -INF, 7.0]], [0], ([0], [1]))
    assert r == {O: [2.0], P: [3.0], R: [2.5]}


def test_filtering_is_per_row():
    scores = [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    # row 0 filters entity 2, row 1 filters nothing; the true entity is 0 in both rows
    r = _ranks(scores, [0, 0], ([0], [2]))
    assert r == {O: [2.0, 3.0], P: [2.0, 3.0], R: [2.0, 3.0]}


def test_duplicate_filter_entries_are_harmless():
    r = _ranks([[1.0, 2.0, 3.0, 1.0]], [0], ([0, 0, 0], [2, 2, 2]))
    assert r == {O: [2.0], P: [3.0], R: [2.5]}


def test_nan_true_score_raises():
    with pytest.raises(ValueError, match="NaN"):
        compute_ranks(torch.tensor([[0.1, NAN, 0.3]]), torch.tensor([1]))
    with pytest.raises(ValueError, match="NaN"):  # even if the true entity is in the filter list
        compute_ranks(torch.tensor([[1.0, 2.0], [0.1, NAN]]), torch.tensor([0, 1]),
                      (torch.tensor([1]), torch.tensor([1])))


def test_ranks_are_float64_for_float32_scores():
    r = compute_ranks(torch.tensor([[0.5, 0.9, 0.5]], dtype=torch.float32), torch.tensor([0]))
    assert all(v.dtype == torch.float64 for v in r.values())
    assert r[R].tolist() == [2.5]


def test_count_greater_equal_and_ranks_from_counts():
    s = torch.tensor([[3.0, 1.0, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    g, e = count_greater_equal(s, torch.tensor([2.0, 0.0]), (torch.tensor([0, 1]), torch.tensor([3, 0])))
    assert g.tolist() == [2, 0] and e.tolist() == [0, 3]
    assert g.dtype == torch.long
    assert torch.isnan(s[0, 3]) and torch.isnan(s[1, 0])  # excluded entries are NaN in place
    r = ranks_from_counts(torch.tensor([2, 0]), torch.tensor([3, 0]))
    assert r[O].tolist() == [3.0, 1.0] and r[P].tolist() == [6.0, 1.0] and r[R].tolist() == [4.5, 1.0]


def test_compute_ranks_matches_sorting_oracle():
    """Optimistic/pessimistic ranks equal the first/last position of the true entity in a stable sort."""
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (40, 12), generator=gen).double()
    scores[scores == 0] = -INF
    true = torch.randint(0, 12, (40,), generator=gen)
    r = compute_ranks(scores.clone(), true)
    for i in range(40):
        row = scores[i].tolist()
        ts = row[true[i]]
        ordered = sorted(range(12), key=lambda j: -row[j] if row[j] != -INF else INF)
        positions = [k + 1 for k, j in enumerate(ordered) if row[j] == ts]
        assert r[O][i].item() == positions[0]
        assert r[P][i].item() == positions[-1]
        assert r[R][i].item() == (positions[0] + positions[-1]) / 2


# ---------------------------------------------------------------------- metrics
def test_rank_metrics_exact_values():
    m = rank_metrics(torch.tensor([1.0, 2.0, 4.0, 10.0, 11.0]), ks=(1, 3, 10))
    assert m["count"] == 5
    assert m["mr"] == pytest.approx(28 / 5, abs=1e-15)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 4 + 1 / 10 + 1 / 11) / 5, abs=1e-15)
    assert m["hits@1"] == pytest.approx(1 / 5, abs=1e-15)
    assert m["hits@3"] == pytest.approx(2 / 5, abs=1e-15)
    assert m["hits@10"] == pytest.approx(4 / 5, abs=1e-15)  # rank 10 counts, 11 does not
    assert set(m) == {"mr", "mrr", "hits@1", "hits@3", "hits@10", "count"}


def test_rank_metrics_fractional_realistic_ranks():
    m = rank_metrics(torch.tensor([1.5, 3.0, 3.5]), ks=(1, 3))
    assert m["hits@1"] == 0.0
    assert m["hits@3"] == pytest.approx(2 / 3, abs=1e-15)
    assert m["mrr"] == pytest.approx((2 / 3 + 1 / 3 + 2 / 7) / 3, abs=1e-15)


def test_rank_metrics_integer_input_and_empty():
    m = rank_metrics(torch.tensor([1, 2]), ks=(1,))
    assert m == {"mr": 1.5, "mrr": 0.75, "hits@1": 0.5, "count": 2}
    e = rank_metrics(torch.empty(0), ks=(1,))
    assert e["count"] == 0 and math.isnan(e["mrr"]) and math.isnan(e["mr"]) and math.isnan(e["hits@1"])


def _result():
    head = ranks_from_counts(torch.tensor([0, 1, 3]), torch.tensor([0, 2, 0]))
    tail = ranks_from_counts(torch.tensor([1, 0, 0]), torch.tensor([0, 0, 4]))
    return EvaluationResult(ranks={Target.HEAD: head, Target.TAIL: tail}, relations=torch.tensor([0, 1, 0]),
                            ks=(1, 3))


def test_evaluation_result_metrics_per_side_and_policy():
    res = _result()
    m = res.metrics()
    assert set(m) == {"head", "tail", "both", "protocol"}
    assert set(m["both"]) == {"optimistic", "pessimistic", "realistic"}
    # head ranks: opt [1, 2, 4], pess [1, 4, 4], real [1, 3, 4]; tail: opt [2, 1, 1], pess [2, 1, 5], real [2, 1, 3]
    assert m["head"]["optimistic"]["mr"] == pytest.approx(7 / 3)
    assert m["head"]["pessimistic"]["mr"] == pytest.approx(3.0)
    assert m["tail"]["realistic"]["mrr"] == pytest.approx((1 / 2 + 1 + 1 / 3) / 3)
    assert m["both"]["realistic"]["mr"] == pytest.approx((1 + 3 + 4 + 2 + 1 + 3) / 6)
    assert m["both"]["pessimistic"]["hits@3"] == pytest.approx(3 / 6)
    assert m["both"]["optimistic"]["count"] == 6
    assert res.get("mrr") == m["both"]["realistic"]["mrr"]
    assert res.get("hits@1", side="tail", policy=O) == pytest.approx(2 / 3)


def test_evaluation_result_mask_and_per_relation():
    res = _result()
    per = res.per_relation(["r0", "r1"])
    assert set(per) == {"r0", "r1"}
    assert per["r0"]["head"]["optimistic"]["mr"] == pytest.approx((1 + 4) / 2)
    assert per["r1"]["both"]["pessimistic"]["count"] == 2
    assert per["r1"]["tail"]["realistic"]["mr"] == 1.0
    assert set(res.per_relation()) == {"0", "1"}
    assert res.to_dict() == {"metrics": res.metrics()}


def test_evaluation_result_single_side():
    tail = ranks_from_counts(torch.tensor([1, 0]), torch.tensor([0, 2]))
    res = EvaluationResult(ranks={Target.TAIL: tail}, relations=torch.tensor([0, 0]), ks=(1,))
    m = res.metrics()
    assert set(m) == {"tail", "both", "protocol"}
    assert m["both"] == m["tail"]
