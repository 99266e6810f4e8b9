"""What a run adds to the loop for transfer learning, decided in one place (the training
batches' augmentation is the data's modality's: Modality.augment):

    fine-tuning     with --weights (or a model pretrained as it was built: transfer:<folder>,
                    models/hf_text.py) and a model that has `param_groups()`: GradualUnfreezing
                    (training/callbacks/unfreeze.py); the discriminative learning rates are built
                    by training/optim.py
    record          the layer groups, their learning rates and the stages, for config.json
"""

from __future__ import annotations

from typing import Any

from torch import nn

from deepfit.config import RunConfig, TrainConfig
from deepfit.core.notes import Notes
from deepfit.training.callbacks.base import Callback
from deepfit.training.callbacks.unfreeze import GradualUnfreezing
from deepfit.training.optim import discriminative_groups, fine_tuning


def finetuning_callbacks(cfg: RunConfig, model: nn.Module, notes: Notes) -> list[Callback]:
    """The callbacks fine-tuning a pretrained model needs (gradual unfreezing, with
    discriminative learning rates), noted; none without --weights or layer groups."""
    callbacks: list[Callback] = []
    if fine_tuning(cfg.train, model):
        unfreeze = GradualUnfreezing(model, cfg.train.freeze_epochs, cfg.train.unfreeze_every)
        notes.decide(f"fine-tuning in stages: {unfreeze.describe()}")
        rates = ", ".join(f"{g['name']} {g['lr']:.3g}" for g in param_group_rates(model, cfg.train))
        notes.decide(f"discriminative learning rates, geometric from the head's down to "
                     f"{cfg.train.backbone_lr_mult:g} × that for the lowest group "
                     f"(--backbone-lr-mult): {rates}")
        callbacks.append(unfreeze)
    return callbacks


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
    if fine_tuning(t, model):
        record["param_groups"] = param_group_rates(model, t)
        record["stages"] = {"freeze_epochs": t.freeze_epochs, "unfreeze_every": t.unfreeze_every,
                            "backbone_lr_mult": t.backbone_lr_mult}
    return record
