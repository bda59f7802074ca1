"""Interactions (decoders): scoring functions over broadcastable ``(h, r, t)``."""
from .base import (BilinearInteraction, CandidateForm, Interaction, candidate_complex_distance, candidate_distance,
                   candidate_dot, embedding_range, place_candidates)
from .models import INTERACTIONS, ComplEx, DistMult, RotatE, TransE
from .conve import ConvE  # after .models: registers "conve" in INTERACTIONS

__all__ = ["Interaction", "BilinearInteraction", "CandidateForm", "candidate_dot", "candidate_distance",
           "candidate_complex_distance", "place_candidates", "embedding_range", "INTERACTIONS",
           "TransE", "DistMult", "ComplEx", "RotatE", "ConvE"]
