"""Encoders: ``forward(graph) -> Representations(entity (E, d), relation (R', d_r))``."""
from ...registry import Registry
from .base import Encoder, LookupEncoder, Representations

#: encoder classes by name; the pipeline builds each from a config
ENCODERS: Registry = Registry("encoder")
ENCODERS.register("lookup")(LookupEncoder)

__all__ = ["Encoder", "LookupEncoder", "Representations", "ENCODERS"]
