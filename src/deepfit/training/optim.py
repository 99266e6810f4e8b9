"""AdamW with decoupled weight decay (not on biases and norm parameters) and the LR schedules.

Fine-tuning pretrained weights (`--weights`) with a model that has `param_groups()` (the image
models, models/vision.py) gives discriminative learning rates, spread geometrically from the head
to the input (as fastai's `slice(lr × mult, lr)`): the head learns at `lr`, the lowest layer group
at lr × backbone_lr_mult, and the group k steps below the head at lr × backbone_lr_mult**(k / K),
K the number of groups below the head. Every parameter is in the optimizer from the start, frozen
or not: a frozen one has no gradient, and AdamW skips it.
"""

from __future__ import annotations

import torch
from torch import nn

from deepfit.config import TrainConfig
from deepfit.core.space import Choice, Float

# The trainer's tuning ranges, shared by every model (`deepfit tune`; each model declares its
# own beside its defaults in models/registry.py). lr log-uniform, as Bergstra & Bengio (2012) advise.
TRAIN_SPACE = {
    "lr": Float(1e-5, 1e-1, log=True),
    "weight_decay": Float(1e-6, 1e-1, log=True),
    "batch_size": Choice(32, 64, 128, 256),
    "schedule": Choice("plateau", "cosine", "onecycle", "none"),
}


def fine_tuning(cfg: TrainConfig, model: nn.Module) -> bool:
    """Whether a run fine-tunes pretrained weights in layer groups: --weights were given, or the
    model was pretrained as it was built (a transfer:<folder> text model, models/hf_text.py,
    sets `pretrained_from`), and the model has `param_groups()`."""
    pretrained = getattr(cfg, "weights", None) or getattr(model, "pretrained_from", None)
    return bool(pretrained) and hasattr(model, "param_groups")


def create_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    if fine_tuning(cfg, model):
        groups = discriminative_groups(model.param_groups(), cfg)
    else:
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


def discriminative_groups(layers: list[tuple[str, list[nn.Parameter]]], cfg: TrainConfig) -> list[dict]:
    """Optimizer groups from layer groups ordered input → head: the head first (so
    `param_groups[0]` is its LR), each with and without weight decay, the k-th of the K groups
    below the head at lr × backbone_lr_mult**(k / K)."""
    groups = []
    below = max(1, len(layers) - 1)
    for k, (name, params) in enumerate(reversed(layers)):
        lr = cfg.lr * cfg.backbone_lr_mult ** (k / below)
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        groups += [{"params": ps, "weight_decay": wd, "lr": lr, "name": name}
                   for ps, wd in ((decay, cfg.weight_decay), (no_decay, 0.0)) if ps]
    return groups


def describe_groups(optimizer: torch.optim.Optimizer) -> list[dict]:
    """[{name, lr, parameters}] per named layer group, head first (for logs and config.json)."""
    out: dict[str, dict] = {}
    for group in optimizer.param_groups:
        if "name" in group:
            entry = out.setdefault(group["name"], {"name": group["name"], "lr": group["lr"], "parameters": 0})
            entry["parameters"] += sum(p.numel() for p in group["params"])
    return list(out.values())


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
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total_steps), "step"
    return None, "none"
