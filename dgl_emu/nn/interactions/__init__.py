"""Interactions (decoders): scoring functions over broadcastable ``(h, r, t)``."""
from .base import (BilinearInteraction, CandidateForm, Interaction, candidate_complex_distance, candidate_distance,
                   candidate_dot, embedding_range, place_candidates)
from .models import INTERACTIONS, ComplEx, DistMult, RotatE, TransE
# after .models, each registers its interactions in INTERACTIONS (in this order)
from .conve import ConvE
from .translational import PRotatE, TransD
from .tucker import TuckER
from .factorization import (CP, RESCAL, HolE, QuatE, SimplE, circular_convolution, circular_correlation,
                            hamilton_product)

__all__ = ["Interaction", "BilinearInteraction", "CandidateForm", "candidate_dot", "candidate_distance",
           "candidate_complex_distance", "place_candidates", "embedding_range", "INTERACTIONS",
           "TransE", "DistMult", "ComplEx", "RotatE", "ConvE", "TransD", "PRotatE", "TuckER", "RESCAL", "HolE",
           "SimplE", "QuatE", "CP", "circular_correlation", "circular_convolution", "hamilton_product"]
