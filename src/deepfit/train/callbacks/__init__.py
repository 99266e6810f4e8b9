"""Callbacks: small objects with Keras-like hooks that act on the trainer through narrow fields."""

from deepfit.train.callbacks.base import Callback
from deepfit.train.callbacks.best_weights import RestoreBestWeights
from deepfit.train.callbacks.checkpoint import Checkpoint
from deepfit.train.callbacks.early_stopping import EarlyStopping
from deepfit.train.callbacks.gradient_health import GradientHealth
from deepfit.train.callbacks.guards import (
    DeadReLU,
    LossNotDecreasing,
    NonFiniteGuard,
    OverfittingGap,
)
from deepfit.train.callbacks.progress import ProgressBar
from deepfit.train.callbacks.time_budget import TimeBudget
from deepfit.train.callbacks.unfreeze import GradualUnfreezing

__all__ = [
    "Callback",
    "Checkpoint",
    "DeadReLU",
    "EarlyStopping",
    "GradientHealth",
    "GradualUnfreezing",
    "LossNotDecreasing",
    "NonFiniteGuard",
    "OverfittingGap",
    "ProgressBar",
    "RestoreBestWeights",
    "TimeBudget",
]
