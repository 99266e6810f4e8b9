"""One progress bar over the epochs, updated at each epoch's end with the losses, the monitored
metric and the LR. Quiet when stdout is not a terminal. It does no work inside the epoch."""

from __future__ import annotations

import sys

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deepfit.training.callbacks.base import Callback


class ProgressBar(Callback):
    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stdout.isatty() if enabled is None else enabled
        self.progress: Progress | None = None

    def on_fit_start(self, trainer, state) -> None:
        if not self.enabled:
            return
        self.progress = Progress(
            TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(),
            TextColumn("{task.description}"), transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("", total=trainer.epochs, completed=state.epoch)

    def on_epoch_end(self, trainer, state, logs) -> None:
        if self.progress is None:
            return
        shown = [f"train {logs['train_loss']:.4f}", f"val {logs['val_loss']:.4f}"]
        metric = trainer.monitor.name
        if metric not in ("val_loss", "train_loss"):
            shown.append(f"{metric.removeprefix('val_')} {logs[metric]:.4f}")
        shown.append(f"lr {logs['lr']:.2e}")
        self.progress.update(self.task, completed=state.epoch, description="  ".join(shown))

    def on_fit_end(self, trainer, state) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
