"""AdamW with decoupled weight decay (not on biases and norm parameters) and the LR schedules."""

from __future__ import annotations

import torch
from torch import nn

from deepfit.config import TrainConfig


def create_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"  # fused kernels on CUDA, foreach on CPU
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=fused or None, foreach=None if fused else True)


def create_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int, monitor_mode: str
) -> tuple[object | None, str]:
    """The scheduler and when it steps: 'epoch' (with the monitored value) or 'step'."""
    total_steps = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=monitor_mode, factor=0.5, patience=max(1, cfg.patience // 3)
        )
        return sched, "epoch"
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps), "step"
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total_steps), "step"
    return None, "none"
