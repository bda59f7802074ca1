"""EMU in your own DGL model: an R-GCN encoder with a DistMult decoder, trained with EMU.

This script is the code of the tutorial page ``docs/tutorial_dgl.rst`` (which includes it piece
by piece) and is executed by ``tests/test_docs.py``. Everything that comes from ``dgl_emu`` is
marked ``dgl_emu``; the model itself is ordinary user code on DGL.

Run it with ``python docs/tutorial_dgl.py``; it takes a few seconds on a CPU.
"""
# [imports]
import math

import dgl
import torch
import torch.nn.functional as F
from torch import nn

from dgl_emu.data import generate_cyclic_kg              # a small KG, no files needed
from dgl_emu.evaluation import RankBasedEvaluator        # filtered ranks, MRR, Hits@k
from dgl_emu.losses import EMULoss                       # the EMU soft-label loss
from dgl_emu.nn.emu import EmbeddingMutation             # the mutation layer
from dgl_emu.sampling import UniformNegativeSampler      # (B, K) negatives; DGL protocol too
from dgl_emu.typing import Target                        # Target.HEAD / Target.TAIL

torch.manual_seed(0)   # RelGraphConv and nn.Embedding initialise from torch's global RNG
# [/imports]

# [data]
kg = generate_cyclic_kg(seed=0)          # 384 entities, 6 relations, train/valid/test splits
E, R = kg.num_entities, kg.num_relations
g = kg.graph("train")                    # homogeneous DGLGraph: E nodes, edata[dgl.ETYPE] in 0..2R-1
train = kg.splits["train"]               # (N, 3) int64 (head, relation, tail)
N = len(train)
# kg.graph() lists the N training edges h -> t first, then their N inverses t -> h (relation r + R)
assert torch.equal(g.edata[dgl.ETYPE][:N], train[:, 1])
# [/data]


# [model]
class RGCNEncoder(nn.Module):
    """Two R-GCN layers over learnable node features; works on the full graph or on blocks."""

    def __init__(self, num_nodes: int, num_rels: int, dim: int, num_bases: int = 4):
        super().__init__()
        self.features = nn.Embedding(num_nodes, dim)
        nn.init.xavier_uniform_(self.features.weight)
        self.layers = nn.ModuleList([
            dgl.nn.RelGraphConv(dim, dim, num_rels, regularizer="basis", num_bases=num_bases,
                                self_loop=True)
            for _ in range(2)])

    def forward(self, graph, input_nodes=None):
        """``graph``: the full graph (returns ``(E, d)``) or a list of blocks (returns the
        representations of the last block's destination nodes)."""
        if isinstance(graph, dgl.DGLGraph):
            blocks, x = [graph] * len(self.layers), self.features.weight
        else:
            blocks, x = graph, self.features(input_nodes)
        for i, (layer, block) in enumerate(zip(self.layers, blocks)):
            x = layer(block, x, block.edata[dgl.ETYPE])
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class DistMultDecoder(nn.Module):
    """``score(h, r, t) = sum_i h_i r_i t_i`` over broadcastable ``(..., d)`` tensors."""

    def __init__(self, num_rels: int, dim: int):
        super().__init__()
        self.relation = nn.Embedding(num_rels, dim)

    def forward(self, h, r, t):
        return (h * r * t).sum(-1)


dim, K, batch_size = 32, 32, 256
encoder = RGCNEncoder(E, 2 * R, dim)        # messages use 2R relation types (inverses included)
decoder = DistMultDecoder(R, dim)           # scoring uses the R original relations
optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=0.01)
# [/model]

# [emu]
sampler = UniformNegativeSampler(E, K, num_relations=R, seed=1)   # dgl_emu: explicit seed
emu = EmbeddingMutation(keep_prob=0.39, seed=2)                   # dgl_emu: published p
loss_fn = EMULoss(negative_label=0.53, plain_weight=0.11)         # dgl_emu: published q and c


def emu_loss(anchor, rel, pos, neg, target):
    """The EMU objective on embeddings.

    anchor, rel, pos: (B, 1, d) -- the kept entity, the relation, the true entity of ``target``.
    neg: (B, K, d) -- encoder outputs of the K sampled negatives.
    """
    def score(candidates):                       # candidates fill the ``target`` slot
        if target is Target.TAIL:
            return decoder(anchor, rel, candidates)
        return decoder(candidates, rel, anchor)

    s_pos = score(pos)                            # (B, 1)
    s_plain = torch.cat([s_pos, score(neg)], 1)   # (B, 1 + K): sampled negatives
    neg_emu = emu(pos, neg)                       # (B, K, d): m * neg + (1 - m) * pos
    s_emu = torch.cat([s_pos, score(neg_emu)], 1)  # (B, 1 + K): mutated negatives
    return loss_fn(s_emu, s_plain)               # CE_soft(S_emu, [1, q, ..., q]) / K + c CE(S_plain)
# [/emu]


# [train-ids]
order = torch.Generator().manual_seed(0)
losses = []
for module in (encoder, decoder, emu):
    module.train()                     # EMU mutates only in training mode
for step in range(60):
    hrt = train[torch.randint(0, N, (batch_size,), generator=order)]     # (B, 3)
    target = Target.TAIL if step % 2 == 0 else Target.HEAD               # alternate sides
    neg_ids = sampler(hrt, target)                                       # (B, K) entity ids
    ent = encoder(g)                                                     # encode once: (E, d)
    c, o = target.column, target.other.column                            # 2/0 for TAIL, 0/2 for HEAD
    loss = emu_loss(anchor=ent[hrt[:, o]].unsqueeze(1),
                    rel=decoder.relation(hrt[:, 1]).unsqueeze(1),
                    pos=ent[hrt[:, c]].unsqueeze(1),
                    neg=ent[neg_ids],                                    # gather (B, K, d)
                    target=target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
# [/train-ids]

# [train-dgl]
# the same sampler object speaks DGL's negative-sampler protocol: sampler(g, eids) -> (src, dst)
reverse_eids = torch.cat([torch.arange(N, 2 * N), torch.arange(0, N)])  # edge i <-> its inverse
edge_sampler = dgl.dataloading.as_edge_prediction_sampler(
    dgl.dataloading.MultiLayerFullNeighborSampler(2),
    exclude="reverse_id", reverse_eids=reverse_eids,   # no seed edge (or inverse) in its own blocks
    negative_sampler=sampler)
seeds = torch.randperm(N, generator=order)        # forward edges only, in our own random order
loader = dgl.dataloading.DataLoader(g, seeds, edge_sampler, batch_size=batch_size,
                                    shuffle=False, drop_last=True)   # (shuffle=True uses NumPy's RNG)
for input_nodes, pair_graph, neg_graph, blocks in loader:
    h = encoder(blocks, input_nodes)                 # (n, d): one row per node of pair_graph
    src, dst = pair_graph.edges()                    # (B,) positive edges h -> t, seed order
    rel_ids = g.edata[dgl.ETYPE][pair_graph.edata[dgl.EID]]
    _, neg_dst = neg_graph.edges()                   # (B * K,): K corrupted tails per positive
    B = len(src)
    loss = emu_loss(anchor=h[src].unsqueeze(1),
                    rel=decoder.relation(rel_ids).unsqueeze(1),
                    pos=h[dst].unsqueeze(1),
                    neg=h[neg_dst].view(B, K, -1),   # (B, K, d)
                    target=Target.TAIL)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
# [/train-dgl]

# [evaluate]
encoder.eval()
decoder.eval()
with torch.no_grad():
    ent = encoder(g)                                 # encode once for the whole evaluation
    rel = decoder.relation.weight


def scorer(hrt, target, entities=None):
    """(B, 3) queries -> (B, E) scores of every entity on the ``target`` side."""
    candidates = ent if entities is None else ent[entities]
    anchor = ent[hrt[:, target.other.column]]
    return (anchor * rel[hrt[:, 1]]) @ candidates.T  # DistMult is symmetric in h and t


evaluator = RankBasedEvaluator(kg.filter_index(), batch_size=512)   # filter train + valid + test
result = evaluator.evaluate(scorer, kg.splits["test"])
mrr, hits10 = result.get("mrr"), result.get("hits@10")
random_mrr = sum(1.0 / k for k in range(1, E + 1)) / E              # a uniformly random ranking
print(f"loss {sum(losses[:5]) / 5:.4f} -> {sum(losses[-5:]) / 5:.4f} in {len(losses)} steps")
print(f"test MRR {mrr:.4f}, Hits@10 {hits10:.4f} (random ranking: MRR {random_mrr:.4f})")
assert sum(losses[-5:]) < sum(losses[:5]), "the loss should decrease"
assert math.isfinite(mrr) and mrr > 3 * random_mrr, "MRR should beat a random ranking"
# [/evaluate]
