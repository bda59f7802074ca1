"""Knowledge-graph data: readers, :class:`KnowledgeGraph`, filter indices and the dataset registry."""
from .datasets import (DATASETS, ChecksumError, DatasetInfo, DatasetNotFoundError, data_root,
                       dataset_dir, dataset_files, load_dataset, verify)
from .download import download
from .generated import RangeLabels, generate_cyclic_kg, generate_large_kg
from .index import FilterIndex
from .io import DataFormatError, read_dict_file, read_id_triples, read_labeled_triples
from .knowledge_graph import SPLITS, KnowledgeGraph, SplitReport, UnseenEntityPolicy
from .reciprocal import with_reciprocal_relations

__all__ = ["KnowledgeGraph", "UnseenEntityPolicy", "SplitReport", "SPLITS", "FilterIndex",
           "DataFormatError", "read_labeled_triples", "read_dict_file", "read_id_triples",
           "DATASETS", "DatasetInfo", "DatasetNotFoundError", "ChecksumError", "data_root",
           "dataset_dir", "dataset_files", "download", "load_dataset", "verify", "generate_cyclic_kg",
           "generate_large_kg", "RangeLabels", "with_reciprocal_relations"]
