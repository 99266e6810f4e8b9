"""Class imbalance: measure it, choose how to handle it, and the weights that handle it.

Methods (`--imbalance`):
    none     the plain loss and a plain shuffle
    weights  inverse-frequency class weights in the loss: w_c = n / (C * n_c)   (scikit-learn's
             "balanced"), counted on the training split only
    sampler  oversampling of the training split: each epoch draws n rows with replacement, row i
             with probability ∝ w_{y_i}, so every class is drawn equally often on average;
             validation and test keep their natural distribution
    focal    focal loss (training/losses.py) with the same class weights as its alpha
    auto     weights when the majority/minority ratio exceeds AUTO_RATIO, else none
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepfit.errors import SettingsError
from deepfit.training.losses import DEFAULT_LOSS, create_loss

METHODS = ("auto", "none", "weights", "sampler", "focal")
AUTO_RATIO = 3.0  # majority/minority count ratio above which `auto` reweights


@dataclass(frozen=True)
class Imbalance:
    counts: list[int]  # training-split count of each encoded class
    ratio: float  # majority count / minority count
    method: str  # resolved: none, weights, sampler or focal

    @property
    def class_weights(self) -> torch.Tensor:
        return class_weights(torch.tensor(self.counts))


def class_counts(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Rows of each class code in `y` [N] → [n_classes]."""
    return torch.bincount(y.reshape(-1).long().cpu(), minlength=n_classes)


def imbalance_ratio(counts: torch.Tensor | list[int]) -> float:
    """Majority count / minority count over the classes present (inf if one is absent)."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    present = counts[counts > 0]
    if len(present) < len(counts):
        return float("inf")
    return float(present.max() / present.min())


def class_weights(counts: torch.Tensor | list[int]) -> torch.Tensor:
    """Inverse-frequency weights n / (C * n_c) [C] (float32); 0 for a class with no rows."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    n, n_classes = counts.sum(), len(counts)
    weights = torch.where(counts > 0, n / (n_classes * counts.clamp(min=1)), torch.zeros_like(counts))
    return weights.float()


def sample_weights(y: torch.Tensor, counts: torch.Tensor | list[int]) -> torch.Tensor:
    """Each row's sampling weight [N]: its class's weight, so that classes are drawn equally."""
    return class_weights(counts).double()[y.reshape(-1).long().cpu()]


def resolve(method: str, y_train: torch.Tensor, n_classes: int) -> tuple[Imbalance, str]:
    """The method to use for these training labels and a sentence saying why."""
    if method not in METHODS:
        raise SettingsError(f"imbalance must be one of {', '.join(METHODS)}, not {method!r}")
    counts = class_counts(y_train, n_classes)
    ratio = imbalance_ratio(counts)
    shown = f"majority/minority ratio {ratio:.1f}" + (":1" if ratio < float("inf") else "")
    if method != "auto":
        chosen, why = method, f"{shown}; --imbalance {method} (as asked)"
    elif ratio > AUTO_RATIO:
        chosen, why = "weights", (f"{shown} exceeds {AUTO_RATIO:g}: inverse-frequency class weights "
                                  "in the loss (--imbalance auto; or choose sampler, focal or none)")
    else:
        chosen, why = "none", f"{shown} is at most {AUTO_RATIO:g}: no rebalancing (--imbalance auto)"
    return Imbalance(counts.tolist(), ratio, chosen), f"class imbalance: {why}"


def loss_for(task: str, found: Imbalance | None, focal_gamma: float = 2.0) -> nn.Module:
    """The task's loss, with the class weights (from the training split) or focal, as chosen."""
    if found is None or found.method in ("none", "sampler"):
        return create_loss(DEFAULT_LOSS[task])
    if found.method == "focal":
        return create_loss("focal", gamma=focal_gamma, alpha=found.class_weights)
    return create_loss(DEFAULT_LOSS[task], weight=found.class_weights)
