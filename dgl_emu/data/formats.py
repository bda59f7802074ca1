"""File formats of registered datasets: ``loader(info, directory, files, unseen) -> KnowledgeGraph``.

* ``tsv``: labelled ``head<TAB>relation<TAB>tail`` files (FB15k-237, WN18RR, YAGO3-10,
  Wikidata5M, ...), read by :meth:`KnowledgeGraph.from_files`.
* ``ogbl-wikikg2``: the Open Graph Benchmark's layout. ``train.pt``, ``valid.pt`` and ``test.pt``
  are ``torch.save``-d dictionaries of NumPy arrays (``head``, ``relation``, ``tail``; valid and
  test also ``head_neg`` and ``tail_neg``, ``(N, 500)`` given negatives per query), and
  ``num-node-list.csv.gz`` holds the number of entities. Ids are already integers; labels are
  ``e<i>`` / ``r<i>``. The given negatives go to :attr:`KnowledgeGraph.negatives` for the sampled
  evaluation protocol that OGB prescribes.
"""
from __future__ import annotations

import codecs
import gzip
from pathlib import Path
from typing import Dict

import numpy as np
import torch

from ..registry import Registry
from ..typing import Target
from .generated import RangeLabels
from .io import DataFormatError
from .knowledge_graph import KnowledgeGraph, SplitReport, UnseenEntityPolicy, count_in_training

__all__ = ["FORMATS", "load_tsv", "load_ogbl_wikikg2"]

#: dataset file formats by name
FORMATS: Registry = Registry("dataset format")


@FORMATS.register("tsv")
def load_tsv(info, directory: Path, files: Dict[str, Path], unseen: UnseenEntityPolicy) -> KnowledgeGraph:
    """Labelled triples, one file per split."""
    return KnowledgeGraph.from_files(files["train"], files.get("valid"), files.get("test"),
                                     name=info.name, unseen=unseen)


def _load_split(path: Path) -> dict:
    """An OGB split dictionary, unpickling only NumPy arrays (no arbitrary objects)."""
    allowed = [np.core.multiarray._reconstruct, np.ndarray, np.dtype, codecs.encode]
    allowed += [type(np.dtype(t)) for t in (np.int64, np.int32, np.float32, np.float64)]
    try:
        with torch.serialization.safe_globals(allowed):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DataFormatError(f"{path}: not an OGB split file ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(data, dict) or not {"head", "relation", "tail"} <= set(data):
        raise DataFormatError(f"{path}: expected a dictionary with head, relation and tail arrays")
    return data


def _ids(data: dict, key: str, path: Path) -> torch.Tensor:
    value = np.asarray(data[key])
    if value.dtype.kind not in "iu":
        raise DataFormatError(f"{path}: {key} holds {value.dtype} values, expected integer ids")
    return torch.from_numpy(value.astype(np.int64))


@FORMATS.register("ogbl-wikikg2")
def load_ogbl_wikikg2(info, directory: Path, files: Dict[str, Path],
                      unseen: UnseenEntityPolicy) -> KnowledgeGraph:
    """OGB's ``split/time/*.pt`` dictionaries (stored flat in the dataset folder)."""
    count_file = directory / "num-node-list.csv.gz"
    try:
        num_entities = int(gzip.decompress(count_file.read_bytes()).decode().split()[0])
    except (OSError, ValueError, IndexError) as e:
        raise DataFormatError(f"{count_file}: expected the number of entities ({e})") from None
    splits, negatives = {}, {}
    for split, path in files.items():
        data = _load_split(path)
        splits[split] = torch.stack([_ids(data, "head", path), _ids(data, "relation", path),
                                     _ids(data, "tail", path)], 1)
        if "head_neg" in data and "tail_neg" in data:
            negatives[split] = {Target.HEAD: _ids(data, "head_neg", path),
                                Target.TAIL: _ids(data, "tail_neg", path)}
    num_relations = info.counts["relations"]
    reports = {s: SplitReport(triples=len(t)) for s, t in splits.items()}
    if "train" in splits:
        for s, n in count_in_training(splits, num_entities, num_relations).items():
            reports[s].in_train = n
    try:
        kg = KnowledgeGraph(RangeLabels("e", num_entities), RangeLabels("r", num_relations), splits,
                            name=info.name, reports=reports, negatives=negatives)
    except ValueError as e:
        raise DataFormatError(f"{directory}: {e}") from None
    return kg
