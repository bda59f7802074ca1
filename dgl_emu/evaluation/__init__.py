"""Filtered rank-based link-prediction evaluation."""
from .evaluator import RankBasedEvaluator, Scorer
from .metrics import FULL_PROTOCOL, SIDES, EvaluationResult, rank_metrics
from .sampled import SampledRankBasedEvaluator
from .ranks import TiePolicy, compute_ranks, count_greater_equal, ranks_from_counts

from ..registry import Registry

#: evaluation protocols by name; options are their constructor arguments
EVALUATORS: Registry = Registry("evaluator", context=("filter_index", "batch_size", "seed"))
EVALUATORS.register("filtered", exclude=("sides", "ks", "entity_batch_size"))(RankBasedEvaluator)
EVALUATORS.register("sampled", exclude=("sides", "ks"))(SampledRankBasedEvaluator)

__all__ = ["EVALUATORS", "RankBasedEvaluator", "SampledRankBasedEvaluator", "FULL_PROTOCOL", "Scorer", "EvaluationResult", "rank_metrics", "SIDES", "TiePolicy",
           "compute_ranks", "count_greater_equal", "ranks_from_counts"]
