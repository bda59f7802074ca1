"""Training: the per-batch objective, regimes, batch strategies, optimisers, trainer and callbacks."""
from .batching import BatchStrategy, FullGraphBatches, NeighborSampledBatches
from .callbacks import Callback, EarlyStopping, JsonLinesLogger, TensorBoardLogger
from .checkpoint import CheckpointError, load_checkpoint
from .optim import OPTIMIZERS, CombinedOptimizer, OptimizerSchedule
from .regimes import REGIMES, KvsAll, NegativeSampling, OneVsAll, Part, Regime, alternating_target, split_by_side
from .replicas import Replicas
from .step import Objective, StepLoss
from .trainer import Trainer, TrainingDivergedError

__all__ = ["Trainer", "TrainingDivergedError", "Objective", "StepLoss", "OPTIMIZERS", "OptimizerSchedule",
           "CombinedOptimizer", "BatchStrategy", "FullGraphBatches", "NeighborSampledBatches", "CheckpointError",
           "load_checkpoint", "Callback", "EarlyStopping", "JsonLinesLogger", "TensorBoardLogger",
           "alternating_target", "split_by_side", "REGIMES", "Regime", "Part", "NegativeSampling", "OneVsAll",
           "KvsAll", "Replicas"]
