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


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): -alpha_y (1 - p_y)^gamma log p_y, which down-weights the
    easy, well-classified rows. Averaged like weighted cross-entropy (sum / sum of alpha_y), so
    gamma = 0 is exactly `CrossEntropy(weight=alpha)`."""

    def __init__(self, gamma: float = 2.0, alpha: torch.Tensor | None = None) -> None:
        super().__init__()
        if gamma < 0:
            raise SettingsError(f"focal_gamma must be >= 0, not {gamma}")
        self.gamma = float(gamma)
        self.register_buffer("alpha", alpha)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)  # [B]
        loss = -((1 - log_p.exp()).clamp(min=0) ** self.gamma) * log_p  # [B]
        if self.alpha is None:
            return loss.mean()
        alpha = self.alpha[target]  # [B]
        return (alpha * loss).sum() / alpha.sum()


class MSE(nn.Module):
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(pred.reshape(target.shape), target)  # pred [B, 1], target [B]


class Reconstruction(nn.Module):
    """The mean of per-sample reconstruction errors [B] (an autoencoder's outputs,
    models/autoencoder.py); the target (anomaly labels, if any) is not used: never trained on."""

    def forward(self, errors: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return errors.mean()

    @torch.no_grad()
    def trivial_reference(self, model: nn.Module, data) -> float | None:
        """This loss for the prediction that ignores the inputs, on a split's batches (`data`):
        every sample reconstructed as the split's mean of each value (`model.target`), ×n/(n−1)
        for being fitted on the rows it scores (the guards' reference, training/callbacks/guards.py)."""
        if not hasattr(model, "target") or data is None:
            return None
        parts = [model.target(xb).double() for xb, _ in data.eval_batches()]
        values = torch.cat(parts) if parts else None
        if values is None or len(values) < 2:
            return None
        n = len(values)
        return float((values - values.mean(0)).square().flatten(1).mean(1).mean()) * n / (n - 1)


LOSSES = {"cross_entropy": CrossEntropy, "focal": FocalLoss, "mse": MSE, "reconstruction": Reconstruction}
DEFAULT_LOSS = {"classification": "cross_entropy", "regression": "mse", "anomaly": "reconstruction"}


def create_loss(name: str, **settings) -> nn.Module:
    if name not in LOSSES:
        raise SettingsError(f"unknown loss {name!r}; available: {', '.join(sorted(LOSSES))}")
    try:
        return LOSSES[name](**settings)
    except TypeError as exc:  # an unknown setting
        raise SettingsError(f"loss {name!r}: {exc}") from None
