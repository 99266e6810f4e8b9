"""Loss functions by name. Each takes raw model outputs and encoded targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepfit.errors import SettingsError


class CrossEntropy(nn.Module):
    def __init__(self, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, weight=self.weight)  # logits [B, C], target [B]


class MSE(nn.Module):
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(pred.reshape(target.shape), target)  # pred [B, 1], target [B]


LOSSES = {"cross_entropy": CrossEntropy, "mse": MSE}
DEFAULT_LOSS = {"classification": "cross_entropy", "regression": "mse"}


def create_loss(name: str, **settings) -> nn.Module:
    if name not in LOSSES:
        raise SettingsError(f"unknown loss {name!r}; available: {', '.join(sorted(LOSSES))}")
    return LOSSES[name](**settings)
