"""Write the last checkpoint after every epoch (and when a signal stops training mid-epoch),
and the best weights whenever the monitored quantity improves. See training/checkpoint.py."""

from __future__ import annotations

from pathlib import Path

from deepfit.training.callbacks.base import Callback
from deepfit.training.checkpoint import remove_stray_files, save_checkpoint


class Checkpoint(Callback):
    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.last = None

    def on_fit_start(self, trainer, state) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_stray_files(self.directory)

    def on_epoch_end(self, trainer, state, logs) -> None:
        if state.improved:
            best = {"model": trainer.model.state_dict(), "epoch": state.epoch, "score": state.best_score}
            save_checkpoint(self.directory, "best", state.step, best)
        self.last = save_checkpoint(self.directory, "last", state.step, trainer.checkpoint_state())

    def on_interrupt(self, trainer, state) -> None:
        self.last = save_checkpoint(self.directory, "last", state.step, trainer.checkpoint_state())
