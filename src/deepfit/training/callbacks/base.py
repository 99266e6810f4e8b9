"""The callback interface. Every hook gets the trainer, its state and (at epoch end) the logs.

A callback that needs per-step work sets `batch_hooks = True`; otherwise the trainer never calls
it inside the training step, and the hot loop stays free of Python overhead.
"""

from __future__ import annotations

from typing import Any

from deepfit.training.state import TrainState

# The trainer (training/trainer.py) that calls the hooks. Named here, not imported: the trainer
# imports this module, and a callback reaches the trainer only through its documented fields
# (model, optimizer, scheduler, state).
Trainer = Any


class Callback:
    batch_hooks = False

    def on_fit_start(self, trainer: Trainer, state: TrainState) -> None: ...

    def on_epoch_start(self, trainer: Trainer, state: TrainState) -> None: ...

    def on_batch_end(self, trainer: Trainer, state: TrainState) -> None: ...

    def on_epoch_end(self, trainer: Trainer, state: TrainState, logs: dict[str, float]) -> None: ...

    def on_fit_end(self, trainer: Trainer, state: TrainState) -> None: ...

    def on_interrupt(self, trainer: Trainer, state: TrainState) -> None:
        """Training was asked to stop (a signal) after the current step; it will not resume."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state saved in checkpoints (tensors go in `tensors()`)."""
        return {}

    def load_state_dict(self, d: dict[str, Any]) -> None: ...
