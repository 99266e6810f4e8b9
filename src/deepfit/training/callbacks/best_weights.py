"""Keep a copy of the weights of the best epoch and put them back when training ends,
also when it ran to the last epoch."""

from __future__ import annotations

import torch

from deepfit.training.callbacks.base import Callback


class RestoreBestWeights(Callback):
    def __init__(self) -> None:
        self.best: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, trainer, state, logs) -> None:
        if state.improved:
            self.best = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, d: dict) -> None:
        self.best = d.get("best")

    def on_fit_end(self, trainer, state) -> None:
        if self.best is not None:
            trainer.model.load_state_dict(self.best)
