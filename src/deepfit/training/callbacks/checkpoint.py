"""Write the last checkpoint after every epoch (and when a signal stops training mid-epoch),
and the best weights whenever the monitored quantity improves. Within an epoch too, every
`every_steps` steps and once `every_seconds` have passed since the last checkpoint, so that a
kill (SIGKILL, a power cut) on long epochs loses at most that much work; such a checkpoint is
the one an interruption at that step would write, so resuming from it is exact. The clock is
read once per step (host time only: no device sync). See training/checkpoint.py.

Under torchrun every process builds the checkpoint's state (it gathers every process's
generators: a collective, at the same steps everywhere) and only the `writer` (rank 0) writes."""

from __future__ import annotations

import time
from pathlib import Path

from deepfit.errors import SettingsError
from deepfit.training.callbacks.base import Callback
from deepfit.training.checkpoint import remove_stray_files, save_checkpoint


class Checkpoint(Callback):
    def __init__(self, directory: Path | str, every_steps: int | None = None,
                 every_seconds: float | None = None, writer: bool = True) -> None:
        if every_steps is not None and every_steps < 1:
            raise SettingsError(f"checkpoint_every_steps must be at least 1, not {every_steps}")
        if every_seconds is not None and not every_seconds >= 0:
            raise SettingsError(f"checkpoint_every_seconds must be 0 (off) or more, not {every_seconds}")
        self.directory = Path(directory)
        self.every_steps = every_steps
        self.every_seconds = every_seconds or None
        self.writer = writer
        self.batch_hooks = bool(every_steps or self.every_seconds)
        self.last = None
        self._saved_at = time.monotonic()

    def on_fit_start(self, trainer, state) -> None:
        if not self.writer:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_stray_files(self.directory)
        self._saved_at = time.monotonic()

    def on_batch_end(self, trainer, state) -> None:
        due = (self.every_steps is not None and state.step % self.every_steps == 0) or (
            self.every_seconds is not None and time.monotonic() - self._saved_at >= self.every_seconds)
        # a stop writes its own checkpoint just after; under torchrun a signal is one process's
        # until the processes agree, and every one must join the checkpoint's collective
        if due and (not trainer.stop_requested or getattr(trainer, "dist", None) is not None):
            self._save_last(trainer, state)

    def on_epoch_end(self, trainer, state, logs) -> None:
        if state.improved and self.writer:
            best = {"model": trainer.model.state_dict(), "epoch": state.epoch, "score": state.best_score}
            save_checkpoint(self.directory, "best", state.step, best)
        self._save_last(trainer, state)

    def on_interrupt(self, trainer, state) -> None:
        self._save_last(trainer, state)

    def _save_last(self, trainer, state) -> None:
        ckpt = trainer.checkpoint_state()
        if self.writer:
            self.last = save_checkpoint(self.directory, "last", state.step, ckpt)
        self._saved_at = time.monotonic()
