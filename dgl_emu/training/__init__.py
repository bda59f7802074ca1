"""Training: the per-batch objective, optimiser schedule, trainer and callbacks."""
from .callbacks import Callback, EarlyStopping, JsonLinesLogger, TensorBoardLogger
from .optim import OptimizerKind, OptimizerSchedule
from .step import Objective, alternating_target, split_by_side
from .trainer import Trainer, TrainingDivergedError

__all__ = ["Trainer", "TrainingDivergedError", "Objective", "OptimizerKind", "OptimizerSchedule",
           "Callback", "EarlyStopping", "JsonLinesLogger", "TensorBoardLogger",
           "alternating_target", "split_by_side"]
