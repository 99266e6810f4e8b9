"""Progress at each epoch's end, with the losses, the monitored metric and the LR; nothing inside
the epoch, and only values the trainer has already fetched (no device sync of its own).

On a terminal, one rich progress bar over the epochs. Otherwise (piped, redirected, under nohup
or a scheduler) one plain line per epoch on stderr, flushed, for a log to keep:

    epoch 3/50  train_loss 0.1234  val_loss 0.1456  val_accuracy 0.9650  lr 1.00e-03  1.2s  (best)

every `log_every` epochs, and always for the run's last epoch (the last of `epochs`, or the one
early stopping, the time budget or a guard stopped at). `enabled=False` prints neither
(`--quiet`); `True` forces the bar.
"""

from __future__ import annotations

import sys

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deepfit.errors import SettingsError
from deepfit.training.callbacks.base import Callback


class ProgressBar(Callback):
    def __init__(self, enabled: bool | None = None, log_every: int = 1) -> None:
        if isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 1:
            raise SettingsError(f"log_every must be a whole number of epochs >= 1, not {log_every!r}")
        self.enabled = enabled
        self.log_every = log_every
        self.bar = False
        self.progress: Progress | None = None

    def on_fit_start(self, trainer, state) -> None:
        self.bar = sys.stdout.isatty() if self.enabled is None else self.enabled
        if not self.bar:
            return
        self.progress = Progress(
            TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(),
            TextColumn("{task.description}"), transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("", total=trainer.epochs, completed=state.epoch)

    def on_epoch_end(self, trainer, state, logs) -> None:
        if self.progress is not None:
            shown = [f"train {logs['train_loss']:.4f}", f"val {logs['val_loss']:.4f}"]
            metric = trainer.monitor.name
            if metric not in ("val_loss", "train_loss"):
                shown.append(f"{metric.removeprefix('val_')} {logs[metric]:.4f}")
            shown.append(f"lr {logs['lr']:.2e}")
            self.progress.update(self.task, completed=state.epoch, description="  ".join(shown))
        elif self.enabled is None:
            last = state.should_stop or state.epoch >= trainer.epochs
            if last or state.epoch % self.log_every == 0:
                print(epoch_line(trainer, state, logs), file=sys.stderr, flush=True)

    def on_fit_end(self, trainer, state) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def epoch_line(trainer, state, logs: dict[str, float]) -> str:
    """One epoch as a plain line: `epoch 3/50  train_loss 0.1234  …  lr 1.00e-03  1.2s`."""
    names = ["train_loss", "val_loss"]
    if trainer.monitor.name not in names:
        names.append(trainer.monitor.name)
    parts = [f"epoch {state.epoch}/{trainer.epochs}", *(f"{n} {_number(logs[n])}" for n in names),
             f"lr {logs['lr']:.2e}", _seconds(logs.get("epoch_seconds", 0.0))]
    if state.improved:
        parts.append("(best)")
    return "  ".join(parts)


def _seconds(value: float) -> str:
    return f"{value:.1f}s" if value >= 1 else f"{value:.2f}s"


def _number(value: float) -> str:
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"
