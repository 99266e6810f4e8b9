"""Metrics computed over a whole split (never averaged over batches), on the device.

Classification metrics take logits [N, C] and integer targets [N]; regression metrics take
predictions and targets in the target's own units.

The per-epoch metrics here are a few lines of torch each, checked against scikit-learn in the
tests, with no library to import. The test-time set (evaluation/full_metrics.py) uses
scikit-learn's metrics, and torchmetrics for the other tasks' metrics, imported where used.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

MetricFn = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]

# Whether a larger value is better ("max") or worse ("min").
MODES = {
    "loss": "min",
    "accuracy": "max",
    "f1_macro": "max",
    "balanced_accuracy": "max",
    "mse": "min",
    "rmse": "min",
    "mae": "min",
    "r2": "max",
}
TASK_METRICS = {
    "classification": ("accuracy", "f1_macro", "balanced_accuracy"),
    "regression": ("mse", "rmse", "mae", "r2"),
    "anomaly": (),  # per epoch only the loss: the mean reconstruction error
}


def mode_of(name: str) -> str:
    """'min' or 'max' for a logged quantity such as 'val_loss' or 'val_f1_macro'."""
    base = name.removeprefix("val_").removeprefix("train_")
    return MODES[base]


def classification_metrics(logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    n_classes = logits.shape[1]
    preds = logits.argmax(dim=1)
    return {
        "accuracy": (preds == target).double().mean(),
        "f1_macro": _f1_macro(preds, target, n_classes),
        "balanced_accuracy": _balanced_accuracy(preds, target, n_classes),
    }


def _balanced_accuracy(preds: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean recall over the classes present in the targets (scikit-learn's rule)."""
    true_pos = torch.bincount(target[preds == target], minlength=n_classes).double()
    actual = torch.bincount(target, minlength=n_classes).double()
    present = actual > 0
    return (true_pos[present] / actual[present]).mean()


def _f1_macro(preds: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Macro F1 over the classes present in the targets or predictions (scikit-learn's rule)."""
    true_pos = torch.bincount(target[preds == target], minlength=n_classes).double()
    actual = torch.bincount(target, minlength=n_classes).double()
    predicted = torch.bincount(preds, minlength=n_classes).double()
    present = (actual + predicted) > 0
    f1 = 2 * true_pos / (actual + predicted).clamp(min=1)  # F1 = 2TP / (2TP + FP + FN)
    return f1[present].mean()


def regression_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    pred, target = pred.reshape(-1).double(), target.reshape(-1).double()
    error = pred - target
    mse = error.square().mean()
    total = (target - target.mean()).square().sum()
    return {
        "mse": mse,
        "rmse": mse.sqrt(),
        "mae": error.abs().mean(),
        "r2": 1 - error.square().sum() / total if total > 0 else torch.zeros_like(mse),
    }


def metric_fn(task: str, target_mean: float = 0.0, target_std: float = 1.0) -> MetricFn | None:
    """The metrics of a task on raw model outputs. Regression outputs are standardised values,
    brought back to the target's units first. None for a task with none per epoch (anomaly)."""
    if task == "classification":
        return classification_metrics
    if not TASK_METRICS.get(task, True):
        return None

    def regression(outputs: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return regression_metrics(outputs * target_std + target_mean, target * target_std + target_mean)

    return regression


def monitor_names(task: str) -> list[str]:
    return ["val_loss", "train_loss", *(f"val_{m}" for m in TASK_METRICS[task])]
