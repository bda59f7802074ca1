"""Encoders: ``forward(graph) -> Representations(entity (E, d), relation (R, d_r))``."""
from ...registry import Registry
from .base import SPARSE_FROM_ENTITIES, Encoder, LookupEncoder, Representations
from .compgcn import COMPOSITIONS, CompGCNEncoder, CompGCNLayer
from .relgraphconv import RelationalGraphConv, RelationPairs, WeightPath, relation_pairs
from .rgcn import Decomposition, RGCNEncoder

#: encoder classes by name; options are their constructor arguments (``num_layers``, ...)
ENCODERS: Registry = Registry("encoder", context=("num_entities", "num_relations", "interaction",
                                                  "generator", "seed"))
ENCODERS.register("lookup")(LookupEncoder)
ENCODERS.register("rgcn", exclude=("conv",))(RGCNEncoder)
ENCODERS.register("compgcn")(CompGCNEncoder)

__all__ = ["Encoder", "LookupEncoder", "Representations", "SPARSE_FROM_ENTITIES", "RGCNEncoder", "Decomposition",
           "RelationalGraphConv", "RelationPairs", "WeightPath", "relation_pairs",
           "CompGCNEncoder", "CompGCNLayer", "COMPOSITIONS", "ENCODERS"]
