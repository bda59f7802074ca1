"""``dgl-emu partition``: a knowledge graph cut into DGL partitions for sharded training.

The training triples become a homogeneous DGL graph (entities are nodes, each triple an edge
``h -> t`` with its relation id ``r`` in ``edata["relation"]``, and its inverse edge ``t -> h``
with ``r + R``, along which GNN encoders pass messages), cut by
:func:`dgl.distributed.partition_graph` into ``N`` parts by METIS or at random. DGL renumbers the
entities so that each partition's are contiguous; the maps between the two numberings are kept
(``node_map.pt``) so that checkpoints are written, and evaluation is done, in the dataset's own
numbering. The relation table is not partitioned: every trainer holds it whole.

Files in the output folder: ``<name>.json`` (DGL's partition configuration, the ``--part-config``
of ``dgl-emu run``), ``part<i>/`` (DGL), ``node_map.pt`` and ``dgl-emu.json`` (what was
partitioned: the dataset, its sizes, the method).
"""
from __future__ import annotations

import contextlib
import enum
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional

import dgl
import torch
from dgl.distributed import partition as dgl_partition

from ..data import KnowledgeGraph
from ..typing import as_count
from ..utils import atomic_write_json

__all__ = ["PartitionMethod", "PartitionInfo", "partition_kg", "read_info", "read_partitions", "INFO_FILE"]

#: metadata written next to DGL's partition configuration
INFO_FILE = "dgl-emu.json"
NODE_MAP = "node_map.pt"


class PartitionMethod(enum.Enum):
    """How entities are assigned to partitions."""

    #: METIS (fewer triples cross partitions)
    METIS = "metis"
    #: uniformly at random
    RANDOM = "random"


@dataclass(frozen=True)
class PartitionInfo:
    """What a partition folder holds.

    Attributes
    ----------
    graph_name : str
        DGL's graph name (``<name>.json``).
    dataset : str
        The dataset (registered name, or the training file) that was partitioned.
    num_entities, num_relations, num_triples : int
        ``E``, ``R`` and training triples.
    num_parts : int
        Partitions.
    method : str
        :class:`PartitionMethod` value.
    """

    graph_name: str
    dataset: str
    num_entities: int
    num_relations: int
    num_triples: int
    num_parts: int
    method: str


def partition_kg(kg: KnowledgeGraph, num_parts: int, out_dir, *, method: PartitionMethod = PartitionMethod.METIS,
                 dataset: Optional[str] = None, graph_name: Optional[str] = None) -> Path:
    """Partition ``kg``'s training triples; returns the path of DGL's partition configuration.

    Parameters
    ----------
    kg : KnowledgeGraph
        ``E`` entities, ``R`` relations, training triples ``(N, 3)``.
    num_parts : int
        Partitions (one per machine).
    out_dir : path-like
        Output folder (created).
    method : PartitionMethod
        METIS or random.
    dataset : str, optional
        The name recorded for the run's check (default ``kg.name``).
    graph_name : str, optional
        DGL's graph name (default: ``dataset`` with unsafe characters replaced).
    """
    num_parts = as_count(num_parts, "num_parts")
    if num_parts > kg.num_entities:
        raise ValueError(f"num_parts: {num_parts} partitions of {kg.num_entities} entities; every partition needs at "
                         f"least one entity: at most {kg.num_entities}")
    dataset = dataset or kg.name
    graph_name = graph_name or "".join(c if c.isalnum() else "_" for c in dataset) or "kg"
    train = kg.splits["train"]
    graph = kg.graph("train", add_inverse=True)  # h -r-> t and t -(r + R)-> h
    graph = dgl.graph(graph.edges(), num_nodes=kg.num_entities)
    graph.edata["relation"] = kg.graph("train", add_inverse=True).edata[dgl.ETYPE].clone()
    out = Path(out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with _checked_assignment(graph, method, num_parts):
            node_map, _ = dgl.distributed.partition_graph(graph, graph_name, num_parts, str(out),
                                                          part_method="random", return_mapping=True)
    except BaseException:
        if created:  # a folder this call made: nothing half-written is left
            shutil.rmtree(out, ignore_errors=True)
        raise
    torch.save({"new_to_orig": node_map.to(torch.long)}, out / NODE_MAP)
    info = PartitionInfo(graph_name, dataset, kg.num_entities, kg.num_relations, len(train), num_parts, method.value)
    atomic_write_json(out / INFO_FILE, asdict(info))
    return out / f"{graph_name}.json"


@contextlib.contextmanager
def _checked_assignment(graph, method: PartitionMethod, num_parts: int):
    """Within it, DGL's partitioner takes an assignment of the entities in which every partition
    owns at least one entity (else DGL stops in an internal check), or refuses it naming the
    partition: METIS's assignment computed on the graph without parallel edges, or DGL's random
    one.

    DGL 1.1.3's METIS corrupts the heap on a graph with parallel edges (measured on UMLS, whose
    entity pairs are linked by several relations: ``free(): corrupted unsorted chunks``, or an
    abort at exit). Knowledge graphs have them, so METIS runs on the simple graph (one edge per
    linked pair, which is also what an edge cut counts), and DGL's partitioner is handed that
    assignment in place of its random one.
    """
    metis = None
    if method is PartitionMethod.METIS and num_parts > 1:
        metis = dgl.metis_partition_assignment(dgl.to_simple(graph), num_parts)
    original = dgl_partition.random_choice

    def choose(parts: int, n: int):
        assignment = metis if metis is not None else original(parts, n)
        counts = torch.bincount(torch.as_tensor(assignment).long(), minlength=parts)
        if bool((counts == 0).any()):
            empty = int((counts == 0).nonzero()[0])
            raise ValueError(f"num_parts: {parts} partitions of {n} entities: the {method.value} assignment leaves "
                             f"partition {empty} without an entity ({int((counts == 0).sum())} empty); use fewer "
                             f"partitions")
        return assignment

    dgl_partition.random_choice = choose
    try:
        yield
    finally:
        dgl_partition.random_choice = original


def read_info(part_config) -> PartitionInfo:
    """The :class:`PartitionInfo` next to ``part_config``.

    Raises
    ------
    FileNotFoundError
        If ``part_config`` was not written by :func:`partition_kg`.
    """
    folder = Path(part_config).parent
    path = folder / INFO_FILE
    if not Path(part_config).is_file() or not path.is_file():
        raise FileNotFoundError(f"{part_config}: not a partition made by dgl-emu partition (no {INFO_FILE} "
                                f"beside it)")
    return PartitionInfo(**json.loads(path.read_text(encoding="utf-8")))


def node_map(part_config) -> torch.Tensor:
    """``(E,)`` the dataset's entity id of each partition-numbered entity."""
    return torch.load(Path(part_config).parent / NODE_MAP, weights_only=True)["new_to_orig"]


def read_partitions(part_config) -> List[Dict[str, torch.Tensor]]:
    """Each partition's own entities and triples, in the dataset's numbering (a round trip).

    Returns
    -------
    list of dict
        Per partition: ``entities (n_i,)`` the entities it owns and ``triples (m_i, 3)`` the
        training triples it holds (those whose forward edge it owns).
    """
    info = read_info(part_config)
    to_orig = node_map(part_config)
    parts = []
    for i in range(info.num_parts):
        graph, _, edge_feats, book, _, _, _ = dgl.distributed.load_partition(str(part_config), i)
        inner_nodes = graph.ndata["inner_node"].bool()
        inner_edges = graph.edata["inner_edge"].bool()
        global_nid = graph.ndata[dgl.NID]
        src, dst = graph.edges()
        relation = next((v for k, v in edge_feats.items() if k.split("/")[-1].split(":")[-1] == "relation"), None)
        if relation is None:
            raise ValueError(f"{part_config}: partition {i} has no relation ids")
        # edge features are stored for the partition's own edges, in the order of its inner edges
        h, t = global_nid[src[inner_edges]], global_nid[dst[inner_edges]]
        forward = relation.long() < info.num_relations
        triples = torch.stack([to_orig[h[forward]], relation.long()[forward], to_orig[t[forward]]], 1)
        parts.append({"entities": to_orig[global_nid[inner_nodes]], "triples": triples})
    return parts
