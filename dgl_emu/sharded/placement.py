"""The sharded placement: a trainer connected to DGL's servers, its own triples, its components.

A trainer process is started by :func:`dgl_emu.sharded.launch.launch` with DGL's environment
(``DGL_ROLE=client``, ``DGL_IP_CONFIG``, ...), torch.distributed's (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``) and :data:`PART_CONFIG_ENV`; :meth:`ShardedPlacement.from_env` connects it and
:meth:`ShardedPlacement.setup` builds what it trains:

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

Validation and testing rank shard-wise for lookup tables: each trainer scores the queries against
the rows of its own share of its machine's partition and the counts are summed, so no machine
holds the ``E x d`` table (:meth:`ShardedPlacement.evaluation`); for GNN encoders and sampled
evaluation rank 0 gathers the shards into a one-process model and ranks every entity there.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Optional

import dgl
import torch
import torch.distributed as dist

from ..config import ConfigError, RunConfig
from ..data import KnowledgeGraph
from ..data_parallel import DataParallelReplicas
from ..evaluation import RankBasedEvaluator
from ..evaluation.shardwise import ShardRanker
from ..models import KGEModel
from ..pipeline import (SEED_OFFSETS, Placement, Setup, build_interaction, build_model, build_objective,
                        build_regime, build_schedule, evaluate, training_graph)
from ..pipeline.setup import Evaluate
from ..training import REGIMES, FullGraphBatches, Replicas
from ..training.optim import CombinedOptimizer, OptimizerSchedule
from .checkpoint import StoreTables
from .encoder import ShardedEncoder, zeros_init
from .gnn import DistNeighborBatches, ShardedGNNEncoder
from .partition import PartitionInfo, node_map, read_info

__all__ = ["ShardedPlacement", "ShardedReplicas", "StoreSchedule", "check_options", "in_trainer", "PART_CONFIG_ENV",
           "RANK_SEED_STRIDE"]

#: the partition configuration of a trainer process (set by the launcher)
PART_CONFIG_ENV = "DGL_EMU_PART_CONFIG"
#: rank ``i`` seeds its generators ``seed + RANK_SEED_STRIDE * i``
RANK_SEED_STRIDE = 7919


def in_trainer() -> bool:
    """Whether this process was started as a sharded trainer (by :func:`dgl_emu.sharded.launch.launch`)."""
    return bool(os.environ.get(PART_CONFIG_ENV))


class ShardedReplicas(DataParallelReplicas):
    """Trainer ``rank`` of ``world_size``: it draws its own batches from its own triples.

    ``scale`` is ``W b_r / B`` when this trainer draws ``b_r`` of a global batch of ``B``
    (batches in proportion to the trainers' triples), so that averaging the gradients gives the
    global batch's mean; each trainer's generators and data order are its own, so checkpoints
    gather them.

    Examples
    --------
    >>> r = ShardedReplicas(1, 2, scale=0.8)
    >>> r.rows(10), r.weight(10, 10)
    (slice(0, 10, None), 0.8)
    """

    def __init__(self, rank: int, world_size: int, scale: float = 1.0):
        super().__init__(rank, world_size)
        self.scale = scale

    def rows(self, n: int) -> slice:
        """Every row: the batch is this trainer's own."""
        return slice(0, n)

    def weight(self, rows: int, batch: int) -> float:
        return rows / batch * self.scale

    drawing = Replicas.drawing  # its own batch: nothing to cut

    def gather_state(self, state: dict) -> Optional[list]:
        """Every trainer's own generators and data order (kept in the writer's checkpoint)."""
        return self.gather(state)

    def own_state(self, state: dict) -> dict:
        """This trainer's generators and data order, over the writer's."""
        return {**state, **state["ranks"][self.rank]} if state.get("ranks") else state


@dataclasses.dataclass(frozen=True, eq=False)
class StoreSchedule(OptimizerSchedule):
    """The optimiser schedule of a sharded trainer: the schedule's torch optimiser of the dense
    parameters and, beside it, the store's optimiser of the entity rows
    (:meth:`~.encoder.ShardedEncoder.row_optimizer`) in the same phase, at the same rate."""

    store: Optional[ShardedEncoder] = None

    @classmethod
    def of(cls, schedule: OptimizerSchedule, store: ShardedEncoder) -> "StoreSchedule":
        """``schedule`` with the row optimiser of ``store`` beside it."""
        return cls(**{f.name: getattr(schedule, f.name) for f in dataclasses.fields(schedule)}, store=store)

    def build(self, params, step: int, sparse=()):
        dense = super().build(params, step, sparse)
        name = self.switch_name if self.phase(step) else self.name
        return CombinedOptimizer([dense, self.store.row_optimizer(name, self.lr_at(step))])


class ShardedPlacement(Placement):
    """This trainer's connection to the partitions.

    Parameters
    ----------
    part_config : Path
        DGL's partition configuration.
    info : PartitionInfo
        What was partitioned.
    rank, world_size : int
        This trainer among the trainers (torch.distributed's ranks).
    graph : dgl.distributed.DistGraph
        The partitioned training graph.
    """

    def __init__(self, part_config: Path, info: PartitionInfo, rank: int, world_size: int, graph: Any):
        super().__init__(ShardedReplicas(rank, world_size))
        self.part_config, self.info, self.graph = Path(part_config), info, graph

    @classmethod
    def from_env(cls) -> Optional["ShardedPlacement"]:
        """Connect this process when it was started as a sharded trainer (``None`` otherwise):
        DGL's client first, then the torch.distributed process group (gloo), as DGL requires."""
        part = os.environ.get(PART_CONFIG_ENV)
        if not part:
            return None
        info = read_info(part)
        dgl.distributed.initialize(os.environ["DGL_IP_CONFIG"])
        if not dist.is_initialized():
            dist.init_process_group("gloo")
        graph = dgl.distributed.DistGraph(info.graph_name, part_config=str(part))
        return cls(Path(part), info, dist.get_rank(), dist.get_world_size(), graph)

    @property
    def writes(self) -> bool:
        """Trainer 0 writes."""
        return self.replicas.rank == 0

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
        rank, world = self.replicas.rank, self.replicas.world_size
        per_machine = max(1, world // book.num_partitions())
        share = torch.tensor_split(torch.arange(len(own)), per_machine)[rank % per_machine]
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

    def setup(self, cfg: RunConfig, kg: KnowledgeGraph, device: torch.device) -> Setup:
        """The components this trainer trains (on CPU: the store serves its rows there)."""
        self.check(cfg, kg)
        rank, world = self.replicas.rank, self.replicas.world_size
        policy = self.graph.get_node_partition_policy("_N")
        if not cfg.gnn:
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
        self.replicas.scale = world * batch / total
        book = self.graph.get_partition_book()
        return Setup(model=model, graph=None, batches=batches, objective=build_objective(own, model),
                     regime=build_regime(own, local_kg), schedule=StoreSchedule.of(build_schedule(cfg), encoder),
                     train=local, batch_size=batch, seed=own.seed, replicas=self.replicas,
                     evaluate=self.evaluation(cfg, kg),
                     tables=StoreTables(encoder, self.own_rows(), rank, int(book.partid)))

    def own_rows(self) -> torch.Tensor:
        """``(n,)`` the store rows this trainer ranks against: its machine's partition, cut into one
        contiguous share per trainer of the machine (every row once over all trainers)."""
        book = self.graph.get_partition_book()
        rows = book.partid2nids(book.partid).long()
        per_machine = max(1, self.replicas.world_size // book.num_partitions())
        return torch.tensor_split(rows, per_machine)[self.replicas.rank % per_machine]

    def evaluation(self, cfg: RunConfig, kg: KnowledgeGraph) -> Evaluate:
        """Evaluation of a sharded model.

        Lookup tables against every entity are ranked shard-wise
        (:class:`~dgl_emu.evaluation.shardwise.ShardRanker`): each trainer pulls its own rows
        (:meth:`own_rows`) and the queries' rows, scores the queries against its rows, and the
        true scores and the counts are summed over the trainers, so no machine holds the whole
        table. A GNN's representations, and sampled evaluation, need the whole graph or table:
        trainer 0 then gathers the shards into a one-process model and ranks there. Every
        trainer returns the result."""
        def run_evaluation(model: KGEModel, split: str, evaluator, progress: bool = False):
            if not cfg.gnn and type(evaluator) is RankBasedEvaluator:
                return self.shardwise(model, kg, split, evaluator)
            return self.gathered(cfg, kg, model, split, evaluator, progress)
        return run_evaluation

    def gathered(self, cfg: RunConfig, kg: KnowledgeGraph, model: KGEModel, split: str, evaluator,
                 progress: bool = False):
        """Ranks of ``split`` by trainer 0 with the whole table: it gathers the shards into a
        one-process model (``(E, d)`` twice: the model's own table and the gathered state) and
        ranks there; every trainer returns the result."""
        result = None
        if self.writes:
            local = build_model(cfg, kg)
            local.load_state_dict(model.state_dict())
            graph = training_graph(local, kg, torch.device("cpu"))  # a GNN's whole graph
            result = evaluate(local, kg, split, graph=graph, progress=progress, evaluator=evaluator)
            del local
        return self.follow(result)

    def shardwise(self, model: KGEModel, kg: KnowledgeGraph, split: str, evaluator: RankBasedEvaluator):
        """Ranks of ``split``, every trainer against its own rows (see :meth:`evaluation`)."""
        encoder = model.eval().encoder
        own = self.own_rows()
        store = encoder.store._tensor
        to_store = torch.empty_like(encoder.new_to_orig)
        to_store[encoder.new_to_orig] = torch.arange(len(to_store))
        ranker = ShardRanker(model.interaction, encoder.new_to_orig[own], store[own], kg.num_entities,
                             evaluator.filter_index, evaluator.batch_size, evaluator.max_scores, evaluator.sides,
                             evaluator.ks)

        def reduce_sum(t: torch.Tensor) -> torch.Tensor:
            dist.all_reduce(t)
            return t

        return ranker.evaluate(kg.splits[split], lambda ids: store[to_store[ids.long()]],
                               encoder.relation.detach(), reduce_sum)


def check_options(cfg: RunConfig) -> None:
    """Refuse the options sharded training cannot honour (before any process starts, and again in
    every trainer).

    Raises
    ------
    ConfigError
        Naming the option and why.
    """
    gnn = cfg.gnn
    refused = {"training.fanouts": (gnn and not cfg.training.fanouts,
                                    "a sharded GNN encodes sampled neighbourhoods: give --fanouts"),
               "encoder.edge_dropout": (gnn and bool(cfg.get("encoder.edge_dropout")),
                                        "edge dropout needs the full graph"),
               "encoder.self_loop_dropout": (gnn and bool(cfg.get("encoder.self_loop_dropout")),
                                             "self-loop dropout needs the full graph"),
               "regime.name": (REGIMES.get(cfg.regime.name).all_entities, "all-entity regimes pull every row"),
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
