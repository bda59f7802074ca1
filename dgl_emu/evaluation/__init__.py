"""Filtered rank-based link-prediction evaluation."""
from .evaluator import RankBasedEvaluator, Scorer
from .metrics import FULL_PROTOCOL, SIDES, EvaluationResult, rank_metrics
from .sampled import SampledRankBasedEvaluator
from .ranks import TiePolicy, compute_ranks, count_greater_equal, ranks_from_counts

__all__ = ["RankBasedEvaluator", "SampledRankBasedEvaluator", "FULL_PROTOCOL", "Scorer", "EvaluationResult", "rank_metrics", "SIDES", "TiePolicy",
           "compute_ranks", "count_greater_equal", "ranks_from_counts"]
