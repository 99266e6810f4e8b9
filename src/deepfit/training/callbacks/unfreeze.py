"""GradualUnfreezing: fine-tune a pretrained model in stages (Howard & Ruder 2018, ULMFiT).

    stage 1   epochs 1 … freeze_epochs: only the new head trains; the body is frozen
    stage 2   then one layer group more, from the top down, every `unfreeze_every` epochs
              (0: the whole body at once), until every group trains

The layer groups are the model's `param_groups()` (models/vision.py), ordered from the input to
the head. Frozen parameters get `requires_grad=False` (no gradient: AdamW leaves them as they
were, weight decay included); frozen BatchNorm layers are put back into eval mode at the start of
every epoch (after the Trainer's `model.train()`), so their running statistics do not move either.
The stage of an epoch is a function of its number alone: a resumed run needs no state from here.

Per epoch the logs (history.csv) get `stage`, `trainable_groups` (the head counts as one) and
`lr_<group>` for every group (the head's `lr` × the group's ratio to it, which the schedules keep),
placed before `lr` so the timing columns stay last.
"""

from __future__ import annotations

import logging

from torch import nn

from deepfit.core.words import plural
from deepfit.training.callbacks.base import Callback
from deepfit.training.optim import describe_groups

TIMING = ("lr", "train_seconds", "epoch_seconds")


class GradualUnfreezing(Callback):
    def __init__(self, model: nn.Module, freeze_epochs: int, unfreeze_every: int = 1) -> None:
        self.groups = model.param_groups()  # [(name, params)], input → head
        self.freeze_epochs, self.unfreeze_every = freeze_epochs, unfreeze_every
        self.n_body = len(self.groups) - 1
        self.trainable = -1  # body groups training in the epoch under way
        self.ratios: dict[str, float] = {}  # each group's LR / the head's (schedules keep them)

    def body_groups_training(self, epoch: int) -> int:
        """How many body groups (counted from the top) train in 0-based epoch `epoch`."""
        if epoch < self.freeze_epochs:
            return 0
        if self.unfreeze_every == 0:
            return self.n_body
        return min(self.n_body, 1 + (epoch - self.freeze_epochs) // self.unfreeze_every)

    def on_fit_start(self, trainer, state) -> None:
        groups = describe_groups(trainer.optimizer)
        self.ratios = {g["name"]: g["lr"] / groups[0]["lr"] for g in groups}

    def on_epoch_start(self, trainer, state) -> None:
        k = self.body_groups_training(state.epoch)
        for i, (_, params) in enumerate(self.groups):
            trains = i >= self.n_body - k  # the head (i = n_body) always trains
            for p in params:
                p.requires_grad_(trains)
        for module in trainer.model.modules():
            params = list(module.parameters(recurse=False))
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and params and not any(
                    p.requires_grad for p in params):
                module.eval()  # frozen: its running statistics stay as they were
        if k != self.trainable:
            names = [name for name, _ in self.groups[self.n_body - k :]]
            logging.getLogger("deepfit").info(
                f"epoch {state.epoch + 1}: stage {1 if k == 0 else 2}, training {', '.join(names)}")
        self.trainable = k

    def on_epoch_end(self, trainer, state, logs) -> None:
        timing = {key: logs.pop(key) for key in TIMING if key in logs}
        logs["stage"] = 1 if self.trainable == 0 else 2
        logs["trainable_groups"] = self.trainable + 1
        for name, ratio in self.ratios.items():  # at the time the trainer's `lr` was read
            logs[f"lr_{name}"] = timing.get("lr", 0.0) * ratio
        logs.update(timing)

    def on_fit_end(self, trainer, state) -> None:
        for _, params in self.groups:  # the trained model is handed over whole
            for p in params:
                p.requires_grad_(True)

    def describe(self) -> str:
        names = [name for name, _ in self.groups]
        every = ("all at once" if self.unfreeze_every == 0
                 else f"one group every {plural(self.unfreeze_every, 'epoch')}, from the top")
        return (f"stage 1: the head alone for {plural(self.freeze_epochs, 'epoch')}, the body frozen (its "
                f"BatchNorm statistics too); stage 2: unfreeze {every}; groups from the input: "
                f"{', '.join(names)}")
