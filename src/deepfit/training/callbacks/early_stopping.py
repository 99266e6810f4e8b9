"""Stop when the monitored quantity has not improved for `patience` epochs."""

from __future__ import annotations

from deepfit.training.callbacks.base import Callback


class EarlyStopping(Callback):
    def __init__(self, patience: int = 10) -> None:
        self.patience = patience

    def on_epoch_end(self, trainer, state, logs) -> None:
        if state.epochs_since_improvement >= self.patience:
            state.should_stop = True
            state.stop_reason = (
                f"early stopping: {trainer.monitor.name} did not improve for {self.patience} epochs "
                f"(best {state.best_score:.4g} at epoch {state.best_epoch})"
            )
