"""Interactions (decoders): scoring functions over broadcastable ``(h, r, t)``."""
from .base import Interaction, embedding_range, place_candidates
from .models import INTERACTIONS, ComplEx, DistMult, RotatE, TransE

__all__ = ["Interaction", "place_candidates", "embedding_range", "INTERACTIONS", "TransE",
           "DistMult", "ComplEx", "RotatE"]
from .conve import ConvE  # noqa: E402  (registers "conve")

__all__.append("ConvE")
