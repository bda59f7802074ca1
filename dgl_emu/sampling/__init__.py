"""Negative samplers: ``sampler(hrt, target) -> (B, K)`` ids, and DGL's ``sampler(g, eids)``."""
from ..registry import Registry
from .base import NegativeSampler
from .filtered import FilteredNegativeSampler, SamplingExhaustedError
from .sans import SANSNegativeSampler, k_hop_neighbourhoods
from .uniform import BernoulliNegativeSampler, UniformNegativeSampler

#: negative-sampler classes by name (uniform, bernoulli, sans); a class's ``from_kg`` builds it
#: when it needs more of the graph than its size
SAMPLERS: Registry = Registry("sampler", context=("kg", "num_entities", "num_relations", "generator",
                                                  "seed", "progress"))
SAMPLERS.register("uniform")(UniformNegativeSampler)
SAMPLERS.register("bernoulli")(BernoulliNegativeSampler)
SAMPLERS.register("sans")(SANSNegativeSampler)

__all__ = ["NegativeSampler", "UniformNegativeSampler", "BernoulliNegativeSampler",
           "SANSNegativeSampler", "FilteredNegativeSampler", "SamplingExhaustedError",
           "k_hop_neighbourhoods", "SAMPLERS"]
