"""What a run adds to the loop for images and for transfer learning, decided in one place:

    augmentation    training batches only (data/augment.py), from --augment and --flip
    fine-tuning     with --weights and a model that has `param_groups()`: GradualUnfreezing
                    (train/callbacks/unfreeze.py); the discriminative learning rates are built
                    by train/optim.py
    record          the layer groups, their learning rates and the stages, for config.json
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from deepfit.config import RunConfig, TrainConfig
from deepfit.core.notes import Notes
from deepfit.data.augment import make_augment
from deepfit.train.callbacks.base import Callback
from deepfit.train.callbacks.unfreeze import GradualUnfreezing
from deepfit.train.optim import discriminative_groups

Augment = Callable[[torch.Tensor], torch.Tensor]


def training_extras(cfg: RunConfig, model: nn.Module, preprocessor: Any,
                    notes: Notes) -> tuple[Augment | None, list[Callback]]:
    """(the training batches' augmentation or None, the callbacks fine-tuning needs)."""
    augment, callbacks = None, []
    shape = getattr(preprocessor, "shape", ())
    if preprocessor.input_spec().get("modality") == "image":
        augment = make_augment(cfg.data.augment, cfg.data.flip, shape, preprocessor.mean,
                               preprocessor.std, unit_range=getattr(preprocessor, "unit_range", True))
        if augment is None:
            notes.decide("no augmentation (--augment none)" + (": --flip ignored" if cfg.data.flip else ""))
        else:
            notes.decide(f"augmentation of the training batches on the device: {augment.description} "
                         "(--augment, --flip); never on validation, test or predictions")
    if cfg.train.weights and hasattr(model, "param_groups"):
        unfreeze = GradualUnfreezing(model, cfg.train.freeze_epochs, cfg.train.unfreeze_every)
        notes.decide(f"fine-tuning in stages: {unfreeze.describe()}")
        rates = ", ".join(f"{g['name']} {g['lr']:.3g}" for g in param_group_rates(model, cfg.train))
        notes.decide(f"discriminative learning rates, geometric from the head's down to "
                     f"{cfg.train.backbone_lr_mult:g} × that for the lowest group "
                     f"(--backbone-lr-mult): {rates}")
        callbacks.append(unfreeze)
    return augment, callbacks


def param_group_rates(model: nn.Module, t: TrainConfig) -> list[dict[str, Any]]:
    """[{name, lr, parameters}] of each layer group, head first, at the start of training."""
    return [{"name": g["name"], "lr": g["lr"], "parameters": sum(p.numel() for p in g["params"])}
            for g in _merged(discriminative_groups(model.param_groups(), t))]


def _merged(groups: list[dict]) -> list[dict]:
    out: dict[str, dict] = {}
    for g in groups:
        entry = out.setdefault(g["name"], {"name": g["name"], "lr": g["lr"], "params": []})
        entry["params"] += g["params"]
    return list(out.values())


def transfer_record(model: nn.Module, architecture: dict[str, Any], t: TrainConfig) -> dict[str, Any]:
    """What config.json says about a fine-tuned run: the architecture built, the layer groups
    with their initial learning rates, and the stages."""
    record: dict[str, Any] = {"architecture": architecture["name"],
                              "architecture_settings": architecture["settings"]}
    if t.weights and hasattr(model, "param_groups"):
        record["param_groups"] = param_group_rates(model, t)
        record["stages"] = {"freeze_epochs": t.freeze_epochs, "unfreeze_every": t.unfreeze_every,
                            "backbone_lr_mult": t.backbone_lr_mult}
    return record
