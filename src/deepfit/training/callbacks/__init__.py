"""Callbacks: small objects with Keras-like hooks that act on the trainer through narrow fields."""

from deepfit.training.callbacks.base import Callback
from deepfit.training.callbacks.best_weights import RestoreBestWeights
from deepfit.training.callbacks.checkpoint import Checkpoint
from deepfit.training.callbacks.early_stopping import EarlyStopping
from deepfit.training.callbacks.gradient_health import GradientHealth
from deepfit.training.callbacks.guards import (
    DeadReLU,
    LossNotDecreasing,
    NonFiniteGuard,
    OverfittingGap,
)
from deepfit.training.callbacks.history_file import HistoryFile
from deepfit.training.callbacks.progress import ProgressBar
from deepfit.training.callbacks.time_budget import TimeBudget
from deepfit.training.callbacks.unfreeze import GradualUnfreezing

__all__ = [
    "Callback",
    "Checkpoint",
    "DeadReLU",
    "EarlyStopping",
    "GradientHealth",
    "GradualUnfreezing",
    "HistoryFile",
    "LossNotDecreasing",
    "NonFiniteGuard",
    "OverfittingGap",
    "ProgressBar",
    "RestoreBestWeights",
    "TimeBudget",
]
