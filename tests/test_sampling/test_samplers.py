"""Negative samplers: shapes, ranges, determinism, filtering, SANS neighbourhoods, DGL protocol."""
from __future__ import annotations

import math
from collections import defaultdict

import dgl
import networkx as nx
import pytest
import torch

from dgl_emu.data.generated import generate_cyclic_kg
from dgl_emu.data.index import FilterIndex
from dgl_emu.data.knowledge_graph import KnowledgeGraph
from dgl_emu.sampling import (SAMPLERS, BernoulliNegativeSampler, FilteredNegativeSampler,
                              NegativeSampler, SANSNegativeSampler, SamplingExhaustedError,
                              UniformNegativeSampler)
from dgl_emu.sampling import sans
from dgl_emu.typing import Target

K = 16
TARGETS = [Target.HEAD, Target.TAIL]


@pytest.fixture(scope="module")
def kg():
    return generate_cyclic_kg(num_rings=4, ring_size=8)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def make_sampler(kind, kg, seed=0, num_negatives=K):
    E, R = kg.num_entities, kg.num_relations
    train = kg.splits["train"]
    if kind == "uniform":
        return UniformNegativeSampler(E, num_negatives, R, generator=gen(seed))
    if kind == "uniform-exclude":
        return UniformNegativeSampler(E, num_negatives, R, exclude_true=True, generator=gen(seed))
    if kind == "bernoulli":
        return BernoulliNegativeSampler(train, E, R, num_negatives, generator=gen(seed))
    if kind == "sans":
        return SANSNegativeSampler(kg.graph("train"), num_negatives, k=2, num_walks=50,
                                   num_relations=R, generator=gen(seed))
    if kind == "filtered":
        return FilteredNegativeSampler(UniformNegativeSampler(E, num_negatives, R, generator=gen(seed)),
                                       kg.filter_index(["train"]))
    raise ValueError(kind)


KINDS = ["uniform", "uniform-exclude", "bernoulli", "sans", "filtered"]


def corrupted_triples(hrt, neg, target):
    """``(B, K, 3)``: each positive with its target slot replaced by the negatives."""
    triples = hrt.unsqueeze(1).expand(-1, neg.shape[1], -1).clone()
    triples[..., target.column] = neg
    return triples


def hop_sets(kg, k):
    """Entities within ``k`` undirected hops of each entity in the training triples (networkx)."""
    G = nx.Graph()
    G.add_nodes_from(range(kg.num_entities))
    G.add_edges_from((h, t) for h, _, t in kg.splits["train"].tolist())
    return {a: set(nx.single_source_shortest_path_length(G, a, cutoff=k)) for a in G.nodes}


# ----------------------------------------------------------------------------- common contract
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", KINDS)
def test_shape_range_and_target_slot(kg, kind, target):
    sampler = make_sampler(kind, kg)
    hrt = kg.splits["train"]
    neg = sampler(hrt, target)
    assert neg.shape == (len(hrt), K) and neg.dtype == torch.long
    assert neg.min() >= 0 and neg.max() < kg.num_entities
    triples = corrupted_triples(hrt, neg, target)
    keep = [c for c in range(3) if c != target.column]
    assert torch.equal(triples[..., keep], hrt[:, keep].unsqueeze(1).expand(-1, K, -1))
    # the target slot itself does change for most negatives (SANS may redraw the true id)
    assert (neg != hrt[:, target.column:target.column + 1]).double().mean() > 0.5
    # and not every row gets the same negatives
    assert not torch.equal(neg, neg[:1].expand_as(neg))


@pytest.mark.parametrize("kind", KINDS)
def test_seeded_determinism(kg, kind):
    hrt = kg.splits["train"]
    a = make_sampler(kind, kg, seed=1)(hrt, Target.TAIL)
    b = make_sampler(kind, kg, seed=1)(hrt, Target.TAIL)
    c = make_sampler(kind, kg, seed=2)(hrt, Target.TAIL)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # consecutive calls continue the stream
    s = make_sampler(kind, kg, seed=1)
    first, second = s(hrt, Target.TAIL), s(hrt, Target.TAIL)
    assert torch.equal(first, a) and not torch.equal(first, second)


def test_registry_and_type_errors(kg):
    assert SAMPLERS.get("uniform") is UniformNegativeSampler
    assert SAMPLERS.get("bernoulli") is BernoulliNegativeSampler
    assert SAMPLERS.get("SANS") is SANSNegativeSampler
    s = make_sampler("uniform", kg)
    with pytest.raises(TypeError):
        s(kg.splits["train"], "tail")
    with pytest.raises(ValueError):
        UniformNegativeSampler(1, 4)
    with pytest.raises(ValueError):
        UniformNegativeSampler(5, 0)


# ----------------------------------------------------------------------------- uniform
@pytest.mark.parametrize("target", TARGETS)
def test_uniform_exclude_true_never_returns_true_id_and_covers_the_rest(target):
    E, n = 7, 20000
    hrt = torch.tensor([[0, 0, 3], [6, 1, 0], [2, 0, 6]]).repeat(n // 3 + 1, 1)[:n]
    neg = UniformNegativeSampler(E, 8, exclude_true=True, generator=gen(0))(hrt, target)
    true = hrt[:, target.column:target.column + 1]
    assert not (neg == true).any()
    # uniform over the other E - 1 ids, for every true id (including 0 and E - 1)
    for t in true.unique().tolist():
        vals = neg[true.squeeze(1) == t].flatten()
        freq = torch.bincount(vals, minlength=E).double() / len(vals)
        assert freq[t] == 0
        others = torch.cat([freq[:t], freq[t + 1:]])
        p = 1 / (E - 1)
        assert (others - p).abs().max() < 5 * math.sqrt(p * (1 - p) / len(vals))


def test_uniform_without_exclusion_can_return_true_id_and_is_uniform():
    E, n = 5, 20000
    hrt = torch.tensor([[0, 0, 1]]).repeat(n, 1)
    neg = UniformNegativeSampler(E, 4, generator=gen(0))(hrt, Target.TAIL)
    freq = torch.bincount(neg.flatten(), minlength=E).double() / neg.numel()
    assert (freq - 1 / E).abs().max() < 5 * math.sqrt(0.2 * 0.8 / neg.numel())
    assert freq[1] > 0


# ----------------------------------------------------------------------------- Bernoulli
def bernoulli_by_loop(triples, num_relations):
    tails_of = defaultdict(set)     # (r, h) -> tails
    heads_of = defaultdict(set)     # (r, t) -> heads
    count = defaultdict(int)
    for h, r, t in triples:
        tails_of[(r, h)].add(t)
        heads_of[(r, t)].add(h)
        count[r] += 1
    probs = []
    for r in range(num_relations):
        if count[r] == 0:
            probs.append(0.5)
            continue
        n_heads = sum(1 for (rr, _) in tails_of if rr == r)
        n_tails = sum(1 for (rr, _) in heads_of if rr == r)
        tph, hpt = count[r] / n_heads, count[r] / n_tails
        probs.append(tph / (tph + hpt))
    return probs


def test_bernoulli_head_probability_on_generated_kg(kg):
    train = kg.splits["train"]
    s = make_sampler("bernoulli", kg)
    expected = bernoulli_by_loop(train.tolist(), kg.num_relations)
    got = s.head_probability(train)
    assert got.shape == (len(train),)
    torch.testing.assert_close(got, torch.tensor([expected[r] for r in train[:, 1].tolist()],
                                                 dtype=torch.float64))


def test_bernoulli_head_probability_hand_made():
    # r0: one head, three tails (1-to-N) -> tph 3, hpt 1 -> 0.75
    # r1: three heads, one tail (N-to-1) -> 0.25; r2: 1-to-1 -> 0.5; r3: no triples -> 0.5
    # r4: 2 heads x 2 tails with duplicates: (0,4,1) twice, (0,4,2), (3,4,1)
    tr = [[0, 0, 1], [0, 0, 2], [0, 0, 3], [1, 1, 0], [2, 1, 0], [3, 1, 0], [2, 2, 3],
          [0, 4, 1], [0, 4, 1], [0, 4, 2], [3, 4, 1]]
    s = BernoulliNegativeSampler(torch.tensor(tr), num_entities=4, num_relations=6, num_negatives=2)
    expected = bernoulli_by_loop(tr, 6)
    assert expected[:4] == [0.75, 0.25, 0.5, 0.5] and expected[5] == 0.5
    hrt = torch.tensor([[0, r, 0] for r in range(6)])
    torch.testing.assert_close(s.head_probability(hrt), torch.tensor(expected, dtype=torch.float64))
    # the filtering wrapper passes it through
    f = FilteredNegativeSampler(s, FilterIndex(torch.tensor(tr), 4, 6))
    torch.testing.assert_close(f.head_probability(hrt), s.head_probability(hrt))
    assert UniformNegativeSampler(4, 2).head_probability(hrt) is None


# ----------------------------------------------------------------------------- SANS
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("target", TARGETS)
def test_sans_negatives_lie_within_k_hops(kg, k, target):
    sampler = SANSNegativeSampler(kg.graph("train"), K, k=k, num_walks=30, num_relations=kg.num_relations,
                                  generator=gen(0))
    hops = hop_sets(kg, k)
    hrt = torch.cat([kg.splits[s] for s in ("train", "valid", "test")])
    neg = sampler(hrt, target)
    anchors = hrt[:, target.other.column].tolist()
    for a, row in zip(anchors, neg.tolist()):
        allowed = hops[a] - {a}
        assert set(row) <= allowed, (a, set(row) - allowed)
    # k = 1 is a real restriction on this graph: far fewer ids than uniform would give
    if k == 1:
        assert max(len(h) for h in hops.values()) < kg.num_entities / 2


@pytest.mark.parametrize("k", [1, 2])
def test_sans_neighbourhoods_equal_exact_k_hop_sets(kg, k):
    sampler = SANSNegativeSampler(kg.graph("train"), 4, k=k, num_walks=4000, seed=3)
    hops = hop_sets(kg, k)
    for a in range(kg.num_entities):
        nb = sampler.neighbours(a)
        assert nb.tolist() == sorted(hops[a] - {a})        # sorted, no duplicates, no self


def test_sans_neighbourhoods_from_directed_walks_only_follow_edges():
    # without inverse edges a walk only follows h -> t: the path 0 -> 1 -> 2 -> 3
    g = dgl.graph((torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3])), num_nodes=5)
    s = SANSNegativeSampler(g, 3, k=2, num_walks=50)
    assert [s.neighbours(a).tolist() for a in range(5)] == [[1, 2], [2, 3], [3], [], []]


def test_sans_draws_uniformly_within_the_neighbourhood(kg):
    sampler = SANSNegativeSampler(kg.graph("train"), 64, k=1, num_walks=500, generator=gen(0))
    a = 5
    nb = sampler.neighbours(a)
    assert len(nb) >= 3
    hrt = torch.tensor([[a, 0, 0]]).repeat(400, 1)
    neg = sampler(hrt, Target.TAIL).flatten()
    freq = torch.bincount(neg, minlength=kg.num_entities).double() / len(neg)
    p = 1 / len(nb)
    assert set(neg.unique().tolist()) == set(nb.tolist())      # every neighbour, first and last too
    assert (freq[nb] - p).abs().max() < 5 * math.sqrt(p * (1 - p) / len(neg))


def test_sans_falls_back_to_uniform_for_isolated_entity():
    kg = KnowledgeGraph.from_id_triples({"train": [[0, 0, 1], [1, 0, 2], [2, 1, 0]],
                                         "test": [[3, 0, 0], [4, 1, 1]]},
                                        num_entities=6, num_relations=2)
    sampler = SANSNegativeSampler(kg.graph("train"), 8, k=2, num_walks=100, num_relations=2,
                                  generator=gen(0))
    assert sampler.neighbours(3).numel() == 0 and sampler.neighbours(4).numel() == 0
    hrt = torch.tensor([[3, 0, 0]] * 500 + [[0, 0, 1]] * 500)
    neg = sampler(hrt, Target.TAIL)
    isolated, connected = neg[:500].flatten(), neg[500:].flatten()
    assert set(isolated.unique().tolist()) == set(range(6))      # uniform over all entities
    freq = torch.bincount(isolated, minlength=6).double() / len(isolated)
    assert (freq - 1 / 6).abs().max() < 5 * math.sqrt((1 / 6) * (5 / 6) / len(isolated))
    assert set(connected.unique().tolist()) == {1, 2}           # 2 hops from entity 0
    # corrupting the head of (0, 1, 4): anchor 4 is isolated too
    assert set(sampler(torch.tensor([[0, 1, 4]] * 200), Target.HEAD).unique().tolist()) == set(range(6))


def test_sans_invalid_arguments(kg):
    with pytest.raises(ValueError):
        SANSNegativeSampler(kg.graph("train"), 4, k=0)
    with pytest.raises(ValueError):
        SANSNegativeSampler(kg.graph("train"), 4, num_walks=0)


# ----------------------------------------------------------------------------- filtered
@pytest.mark.parametrize("target", TARGETS)
def test_filtered_never_returns_known_positive(kg, target):
    index = kg.filter_index(["train", "valid", "test"])
    E, R = kg.num_entities, kg.num_relations
    hrt = torch.cat([kg.splits[s] for s in ("train", "valid", "test")])
    filtered = FilteredNegativeSampler(UniformNegativeSampler(E, K, R, generator=gen(0)), index)
    base = UniformNegativeSampler(E, K, R, generator=gen(0))
    hits_base = 0
    for _ in range(20):
        neg = filtered(hrt, target)
        assert not index.contains(corrupted_triples(hrt, neg, target)).any()
        hits_base += int(index.contains(corrupted_triples(hrt, base(hrt, target), target)).sum())
    assert hits_base > 100        # the unfiltered sampler does hit known triples: the filter matters
    # the true entity itself is a known positive, so it never comes back
    assert not (neg == hrt[:, target.column:target.column + 1]).any()


def test_filtered_keeps_good_negatives_of_the_base_draw():
    E = 6
    index = FilterIndex(torch.tensor([[0, 0, 1], [0, 0, 2]]), E, 1)
    hrt = torch.tensor([[0, 0, 1]] * 50)
    base_gen, wrap_gen = gen(4), gen(4)
    first = UniformNegativeSampler(E, 10, generator=base_gen)(hrt, Target.TAIL)
    out = FilteredNegativeSampler(UniformNegativeSampler(E, 10, generator=wrap_gen), index)(hrt, Target.TAIL)
    good = (first != 1) & (first != 2)
    assert torch.equal(out[good], first[good])       # only the bad slots were redrawn
    assert set(out.unique().tolist()) == {0, 3, 4, 5}


def test_filtered_raises_when_exhausted():
    # every entity is a known tail of (0, r0, ?): no valid tail negative exists
    E = 3
    known = torch.tensor([[0, 0, t] for t in range(E)])
    s = FilteredNegativeSampler(UniformNegativeSampler(E, 4, generator=gen(0)), FilterIndex(known, E, 1),
                                max_rounds=5)
    with pytest.raises(SamplingExhaustedError):
        s(torch.tensor([[0, 0, 1]]), Target.TAIL)
    # the head side of the same triple is fine: only (0, r0, 1) has tail 1
    neg = s(torch.tensor([[0, 0, 1]]), Target.HEAD)
    assert set(neg.flatten().tolist()) <= {1, 2}


# ----------------------------------------------------------------------------- DGL protocol
class Recorder(NegativeSampler):
    """Returns ``(h + r + t + k) mod E`` so every call is traceable, and records its arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def corrupt(self, hrt, target):
        self.calls.append((hrt.clone(), target))
        return (hrt.sum(1, keepdim=True) + torch.arange(self.num_negatives)) % self.num_entities


def test_dgl_protocol_homogeneous_with_inverse_edges(kg):
    g = kg.graph("train")
    E, R = kg.num_entities, kg.num_relations
    n = len(kg.splits["train"])
    eids = torch.tensor([0, 3, n, n + 3, 7, n + 10])          # forward and inverse edges, mixed
    rec = Recorder(E, 3, num_relations=R)
    src, dst = rec(g, eids)
    assert src.shape == dst.shape == (len(eids) * 3,)
    s, d = g.find_edges(eids)
    assert torch.equal(src, s.repeat_interleave(3))
    # forward edge h -r-> t: corrupt the tail of (h, r, t); inverse edge t -(r+R)-> h: the head of (h, r, t)
    train = kg.splits["train"]
    kg_triple = torch.stack([train[e % n] for e in eids.tolist()])
    sides = [Target.HEAD if e >= n else Target.TAIL for e in eids.tolist()]
    recorded = {}
    for hrt, target in rec.calls:
        for row in hrt.tolist():
            recorded[tuple(row)] = target
    assert recorded == {tuple(t): side for t, side in zip(kg_triple.tolist(), sides)}
    expected = (kg_triple.sum(1, keepdim=True) + torch.arange(3)) % E
    assert torch.equal(dst.reshape(-1, 3), expected)


def test_dgl_protocol_inverse_edges_are_filtered_as_head_corruption(kg):
    g = kg.graph("train")
    E, R = kg.num_entities, kg.num_relations
    index = kg.filter_index(["train"])
    sampler = FilteredNegativeSampler(UniformNegativeSampler(E, 8, R, generator=gen(0)), index)
    n = len(kg.splits["train"])
    eids = torch.arange(2 * n)
    src, dst = sampler(g, eids)
    rel = g.edata[dgl.ETYPE][eids].repeat_interleave(8)
    forward = rel < R
    # forward: (src, r, neg) unknown; inverse t -(r+R)-> h: (neg, r, t = src) unknown
    fwd = torch.stack([src[forward], rel[forward], dst[forward]], 1)
    inv = torch.stack([dst[~forward], rel[~forward] - R, src[~forward]], 1)
    assert forward.sum() == (~forward).sum() == 8 * n
    assert not index.contains(fwd).any() and not index.contains(inv).any()
    # the inverse edges' negatives were not filtered as tail corruptions of (t, r, ?)
    wrong = torch.stack([src[~forward], rel[~forward] - R, dst[~forward]], 1)
    assert index.contains(wrong).any()


def test_dgl_protocol_without_relation_info_corrupts_destinations(kg):
    g = kg.graph("train", add_inverse=False)
    rec = Recorder(kg.num_entities, 2)                      # no num_relations: every edge is forward
    src, dst = rec(g, torch.arange(5))
    assert all(t is Target.TAIL for _, t in rec.calls)
    torch.testing.assert_close(rec.calls[0][0], kg.splits["train"][:5])
    assert torch.equal(src, kg.splits["train"][:5, 0].repeat_interleave(2))


def test_dgl_protocol_heterograph_dict_of_eids(kg):
    hg = kg.heterograph()
    rec = Recorder(kg.num_entities, 4, num_relations=kg.num_relations)
    eids = {"shift_1": torch.arange(hg.num_edges("shift_1")), "mirror": torch.tensor([0, 2])}
    out = rec(hg, eids)
    assert set(out) == set(eids)
    for etype, e in eids.items():
        src, dst = out[etype]
        s, d = hg.find_edges(e, etype=etype)
        assert src.shape == dst.shape == (len(e) * 4,)
        assert torch.equal(src, s.repeat_interleave(4))
        r = kg.relation_to_id[etype]
        expected = (s + r + d).unsqueeze(1) + torch.arange(4)
        assert torch.equal(dst.reshape(-1, 4), expected % kg.num_entities)
    relations = sorted(int(hrt[0, 1]) for hrt, _ in rec.calls)
    assert relations == sorted(kg.relation_to_id[e] for e in eids)
    assert all(t is Target.TAIL for _, t in rec.calls)


@pytest.mark.filterwarnings("ignore:Dataloader CPU affinity")
@pytest.mark.parametrize("idtype", [torch.int64, torch.int32])
def test_dgl_dataloader_edge_prediction(kg, idtype):
    g = kg.graph("train", add_inverse=False).astype(idtype)
    E, R, K_ = kg.num_entities, kg.num_relations, 5
    sampler = UniformNegativeSampler(E, K_, R, generator=gen(0))
    edge_sampler = dgl.dataloading.as_edge_prediction_sampler(
        dgl.dataloading.MultiLayerFullNeighborSampler(1), negative_sampler=sampler)
    loader = dgl.dataloading.DataLoader(g, torch.arange(g.num_edges(), dtype=idtype), edge_sampler, batch_size=32,
                                        shuffle=False, drop_last=False, num_workers=0)
    seen = []
    all_src, all_dst = g.edges()
    for input_nodes, pair_graph, neg_graph, blocks in loader:
        B = pair_graph.num_edges()
        assert neg_graph.num_edges() == B * K_
        assert torch.equal(pair_graph.ndata[dgl.NID], neg_graph.ndata[dgl.NID])
        nid = pair_graph.ndata[dgl.NID]
        eids = pair_graph.edata[dgl.EID]
        seen.append(eids)
        ps, pd = pair_graph.edges()
        assert torch.equal(nid[ps], all_src[eids]) and torch.equal(nid[pd], all_dst[eids])
        ns, nd = neg_graph.edges()
        assert ns.dtype == nd.dtype == idtype
        assert torch.equal(nid[ns], all_src[eids].repeat_interleave(K_))
        assert nid[nd].min() >= 0 and nid[nd].max() < E
        # the blocks' destination nodes are the pair graph's nodes
        assert torch.equal(blocks[-1].dstdata[dgl.NID], nid)
        assert torch.equal(input_nodes[:len(nid)], nid)
    assert torch.equal(torch.cat(seen).sort().values, torch.arange(g.num_edges(), dtype=idtype))


@pytest.mark.parametrize("target", [Target.HEAD, Target.TAIL])
def test_shared_negatives_are_the_independent_draw_of_one_row_per_chunk(target):
    """``chunk_size=c``: positives ``i c .. (i + 1) c - 1`` all get row ``i`` of what the
    independent sampler with the same seed draws (the same generator stream, ``ceil(B / c)``
    rows of it), so each positive's K negatives are uniform, and a batch touches at most
    ``ceil(B / c) K`` distinct negative rows."""
    hrt = torch.randint(0, 1000, (10, 3), generator=torch.Generator().manual_seed(5))
    shared = UniformNegativeSampler(1000, 6, chunk_size=4, seed=3)(hrt, target)
    independent = UniformNegativeSampler(1000, 6, seed=3)(hrt, target)
    assert shared.shape == (10, 6)
    for i in range(10):
        assert torch.equal(shared[i], independent[i // 4]), i
    assert len(torch.unique(shared)) <= 3 * 6
    assert not torch.equal(shared[0], shared[4])


def test_shared_negatives_refuse_what_they_cannot_do():
    with pytest.raises(ValueError, match="exclude_true"):
        UniformNegativeSampler(10, 2, exclude_true=True, chunk_size=4)
    with pytest.raises(ValueError, match="positive"):
        UniformNegativeSampler(10, 2, chunk_size=0)


def test_sans_neighbourhoods_do_not_depend_on_the_chunking(monkeypatch):
    """Chunks shrink to keep long walks within WALK_BUDGET; the walks and neighbourhoods stay the same."""
    g = dgl.rand_graph(300, 2000)
    reference = sans.k_hop_neighbourhoods(g, 3, 50, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(reference, sans.k_hop_neighbourhoods(g, 3, 50, seed=1, chunk_size=7)))
    walk, starts = dgl.sampling.random_walk, []
    monkeypatch.setattr(dgl.sampling, "random_walk",
                        lambda g, nodes, **kw: starts.append(len(nodes)) or walk(g, nodes, **kw))
    monkeypatch.setattr(sans, "WALK_BUDGET", 2 * sans.walk_bytes(3, 50))  # chunks of 2 start nodes
    assert all(torch.equal(a, b) for a, b in zip(reference, sans.k_hop_neighbourhoods(g, 3, 50, seed=1)))
    assert starts == [2 * 50] * 150
