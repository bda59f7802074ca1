"""Negative samplers: ``sampler(hrt, target) -> (B, K)`` ids, and DGL's ``sampler(g, eids)``."""
from ..registry import Registry
from .base import NegativeSampler
from .filtered import FilteredNegativeSampler, SamplingExhaustedError
from .sans import SANSNegativeSampler, k_hop_neighbourhoods
from .uniform import BernoulliNegativeSampler, UniformNegativeSampler

#: negative-sampler classes by name (uniform, bernoulli, sans)
SAMPLERS: Registry = Registry("sampler")
SAMPLERS.register("uniform")(UniformNegativeSampler)
SAMPLERS.register("bernoulli")(BernoulliNegativeSampler)
SAMPLERS.register("sans")(SANSNegativeSampler)

__all__ = ["NegativeSampler", "UniformNegativeSampler", "BernoulliNegativeSampler",
           "SANSNegativeSampler", "FilteredNegativeSampler", "SamplingExhaustedError",
           "k_hop_neighbourhoods", "SAMPLERS"]
