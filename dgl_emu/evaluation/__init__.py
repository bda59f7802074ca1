"""Filtered rank-based link-prediction evaluation."""
from .evaluator import RankBasedEvaluator, Scorer
from .metrics import SIDES, EvaluationResult, rank_metrics
from .ranks import TiePolicy, compute_ranks, count_greater_equal, ranks_from_counts

__all__ = ["RankBasedEvaluator", "Scorer", "EvaluationResult", "rank_metrics", "SIDES", "TiePolicy",
           "compute_ranks", "count_greater_equal", "ranks_from_counts"]
