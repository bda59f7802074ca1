"""A trainer of sharded training: connected to DGL's servers, its own triples, its components.

A trainer process is started by :func:`dgl_emu.sharded.launch.launch` with DGL's environment
(``DGL_ROLE=client``, ``DGL_IP_CONFIG``, ...), torch.distributed's (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``) and :data:`PART_CONFIG_ENV`; :meth:`ShardedContext.from_env` connects it and
:meth:`ShardedContext.setup` builds what it trains:

* the entity table in a :class:`dgl.distributed.DistEmbedding` (:class:`~.encoder.ShardedEncoder`,
  or :class:`~.gnn.ShardedGNNEncoder` under an R-GCN or CompGCN encoder, which then encodes
  neighbourhoods sampled from the partitioned graph), initialised with the draws of a one-process
  model of the same seed;
* the relation table and every other weight on each trainer, its gradient averaged over them;
* positives from the trainer's share of its machine's partition, ``batch_size * m_r / N`` of
  them per step for ``m_r`` of the ``N`` training triples, each trainer's loss weighted so that
  the average over trainers is the global batch's mean;
* negatives drawn on the trainer by the configured sampler over the trainer's own triples: uniform
  negatives range over every entity; Bernoulli's head probabilities, SANS's k-hop neighbourhoods
  and the filter of a filtered sampler see only the trainer's partition;
* generators seeded per rank (``seed + 7919 * rank``), so trainers draw different batches,
  negatives and EMU masks.

Validation and testing gather the shards into a one-process model on rank 0 (``E x d`` floats on
that machine) and rank against every entity.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist

from ..config import ConfigError, RunConfig
from ..data import KnowledgeGraph
from ..models import KGEModel
from ..training import FullGraphBatches
from ..training.distributed import Shard, gather_objects
from .partition import PartitionInfo, node_map, read_info

__all__ = ["ShardedContext", "check_options", "PART_CONFIG_ENV", "RANK_SEED_STRIDE"]

#: the partition configuration of a trainer process (set by the launcher)
PART_CONFIG_ENV = "DGL_EMU_PART_CONFIG"
#: rank ``i`` seeds its generators ``seed + RANK_SEED_STRIDE * i``
RANK_SEED_STRIDE = 7919


@dataclass
class ShardedContext:
    """This trainer's connection to the partitions.

    Attributes
    ----------
    part_config : Path
        DGL's partition configuration.
    info : PartitionInfo
        What was partitioned.
    shard : Shard
        Rank and world size; every rank draws its own batches (``splits_batches=False``).
    graph : dgl.distributed.DistGraph
        The partitioned training graph.
    """

    part_config: Path
    info: PartitionInfo
    shard: Shard
    graph: object

    @classmethod
    def from_env(cls, cfg: Optional[RunConfig] = None) -> Optional["ShardedContext"]:
        """Connect this process when it was started as a sharded trainer (``None`` otherwise):
        DGL's client first, then the torch.distributed process group (gloo), as DGL requires."""
        part = os.environ.get(PART_CONFIG_ENV)
        if not part:
            return None
        import dgl
        info = read_info(part)
        dgl.distributed.initialize(os.environ["DGL_IP_CONFIG"])
        if not dist.is_initialized():
            dist.init_process_group("gloo")
        shard = Shard(dist.get_rank(), dist.get_world_size(), splits_batches=False)
        graph = dgl.distributed.DistGraph(info.graph_name, part_config=str(part))
        return cls(Path(part), info, shard, graph)

    def local_triples(self) -> torch.Tensor:
        """``(m, 3)`` this trainer's training triples, in the store's entity numbering: the
        triples (not the inverse edges) of this machine's partition, cut into one contiguous
        share per trainer of the machine, chosen by the torch.distributed rank (DGL's own client
        rank follows the order in which trainers reached the server, so it changes from run to
        run)."""
        book = self.graph.get_partition_book()
        own = book.partid2eids(book.partid)
        relation = self.graph.edata["relation"][own].long()
        forward = relation < self.info.num_relations
        own, relation = own[forward], relation[forward]
        per_machine = max(1, self.shard.world_size // book.num_partitions())
        share = torch.tensor_split(torch.arange(len(own)), per_machine)[self.shard.rank % per_machine]
        src, dst = self.graph.find_edges(own[share])
        return torch.stack([src.long(), relation[share], dst.long()], 1)

    def check(self, cfg: RunConfig, kg: KnowledgeGraph) -> None:
        """Refuse a configuration that does not fit these partitions or sharded training."""
        info = self.info
        if (info.num_entities, info.num_relations, info.num_triples) != (
                kg.num_entities, kg.num_relations, len(kg.splits["train"])):
            raise ConfigError(f"--part-config: {self.part_config} partitions {info.dataset} ({info.num_entities} "
                              f"entities, {info.num_relations} relations, {info.num_triples} training triples), "
                              f"not this run's dataset ({kg.num_entities}, {kg.num_relations}, "
                              f"{len(kg.splits['train'])})")
        check_options(cfg)

    def setup(self, cfg: RunConfig, kg: KnowledgeGraph):
        """The components this trainer trains (:class:`~dgl_emu.pipeline.setup.Setup`)."""
        import dgl
        from ..pipeline.builders import SEED_OFFSETS, build_interaction, build_model, build_objective
        from ..pipeline.builders import build_regime, build_sampler, build_schedule
        from ..pipeline.setup import Setup
        from .encoder import ShardedEncoder, zeros_init
        from .gnn import DistNeighborBatches, ShardedGNNEncoder
        self.check(cfg, kg)
        rank, world = self.shard.rank, self.shard.world_size
        policy = self.graph.get_node_partition_policy("_N")
        if cfg.encoder.name == "lookup":
            interaction = build_interaction(cfg)
            store = dgl.distributed.DistEmbedding(kg.num_entities, interaction.entity_dim, name="entity",
                                                  init_func=zeros_init, part_policy=policy)
            generator = torch.Generator().manual_seed(cfg.seed + SEED_OFFSETS["model"])
            encoder = ShardedEncoder(kg.num_entities, kg.num_relations, interaction, store,
                                     node_map(self.part_config), generator, rank)
            batches = FullGraphBatches()
        else:  # the one-process GNN, its entity table moved into the store
            local = build_model(cfg, kg)
            interaction = local.interaction
            store = dgl.distributed.DistEmbedding(kg.num_entities, local.encoder.entity.shape[1], name="entity",
                                                  init_func=zeros_init, part_policy=policy)
            encoder = ShardedGNNEncoder(local.encoder, store, node_map(self.part_config), rank)
            batches = DistNeighborBatches(self.graph, cfg.training.fanouts)
        model = KGEModel(encoder, interaction)
        own = cfg.updated(seed=cfg.seed + RANK_SEED_STRIDE * rank)  # this rank's negatives and EMU masks
        local = self.local_triples()
        local_kg = KnowledgeGraph.from_id_triples({"train": local}, kg.num_entities, kg.num_relations,
                                                  name=f"{kg.name} (partition of rank {rank})")
        # positives in proportion to the trainer's triples, so that the global batch samples every
        # triple alike however unequal the partitions (METIS balances entities, not triples)
        total = cfg.training.batch_size
        batch = max(1, round(total * len(local) / self.info.num_triples))
        shard = dataclasses.replace(self.shard, scale=world * batch / total)
        return Setup(model=model, graph=None, batches=batches, objective=build_objective(own, model),
                     regime=build_regime(cfg), sampler=build_sampler(own, local_kg), schedule=build_schedule(cfg),
                     train=local, batch_size=batch, seed=own.seed, shard=shard,
                     evaluate=_Evaluation(cfg, kg, self.shard))


class _Evaluation:
    """Evaluation of a sharded model: rank 0 gathers the shards into a one-process model and
    ranks every triple of the split; every rank returns its result."""

    def __init__(self, cfg: RunConfig, kg: KnowledgeGraph, shard: Shard):
        self.cfg, self.kg, self.shard = cfg, kg, shard
        self.local: Optional[KGEModel] = None

    def __call__(self, model: KGEModel, split: str, evaluator, progress: bool = False):
        from ..pipeline.builders import build_model, training_graph
        from ..pipeline.run import evaluate
        result = None
        if self.shard.main:
            if self.local is None:
                self.local = build_model(self.cfg, self.kg)
            self.local.load_state_dict(model.state_dict())
            graph = training_graph(self.local, self.kg, torch.device("cpu"))  # a GNN's whole graph
            result = evaluate(self.local, self.kg, split, graph=graph, progress=progress, evaluator=evaluator)
        return gather_objects(result, self.shard)[0]


def check_options(cfg: RunConfig) -> None:
    """Refuse the options sharded training cannot honour (before any process starts, and again in
    every trainer).

    Raises
    ------
    ConfigError
        Naming the option and why.
    """
    gnn = cfg.encoder.name != "lookup"
    refused = {"training.fanouts": (gnn and not cfg.training.fanouts,
                                    "a sharded GNN encodes sampled neighbourhoods: give --fanouts"),
               "encoder.edge_dropout": (gnn and bool(cfg.get("encoder.edge_dropout")),
                                        "edge dropout needs the full graph"),
               "encoder.self_loop_dropout": (gnn and bool(cfg.get("encoder.self_loop_dropout")),
                                             "self-loop dropout needs the full graph"),
               "regime.name": (cfg.regime.name != "negative_sampling", "all-entity regimes pull every row"),
               "regime.reciprocal": (cfg.regime.options["reciprocal"], "the partitions hold R relations"),
               "regularizer.name": (cfg.regularizer.name == "table" and bool(cfg.get("regularizer.weight")),
                                    "a whole-table penalty pulls every shard each step"),
               "optimizer.max_grad_norm": (cfg.get("optimizer.max_grad_norm") is not None,
                                           "the entity rows' gradients are not all on one trainer"),
               "optimizer.decay_from": (cfg.get("optimizer.decay_from") is not None,
                                        "the store's optimiser keeps its own learning rate"),
               "device": (cfg.device != "cpu", "the store's rows are served on CPU")}
    for path, (bad, why) in refused.items():
        if bad:
            raise ConfigError(f"{path}: not available with sharded embeddings ({why})", path)
