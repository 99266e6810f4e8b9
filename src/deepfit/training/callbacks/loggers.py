"""Feeds the experiment loggers (training/loggers/): the run's settings at the start, every
history column at each epoch's end (the logs are already host floats: no device sync here),
and, only when asked (`every_n_steps`), the running training loss every N steps, one host sync
each time. The run's end (test metrics, plots, artifacts) is `finish`, called once it is saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepfit.training.callbacks.base import Callback


class LoggerCallback(Callback):
    def __init__(self, loggers: list, params: dict[str, Any], every_n_steps: int | None = None,
                 batch_size: int = 1) -> None:
        self.loggers = loggers
        self.params = params
        self.every_n_steps = every_n_steps
        self.batch_size = batch_size
        self.batch_hooks = bool(every_n_steps)

    @classmethod
    def for_run(cls, t: Any, run_dir: Path, params: dict[str, Any]) -> LoggerCallback | None:
        """The callback of a run's training settings `t` (log, mlflow_uri, log_every_n_steps),
        or None when no tracker beyond csv is asked for."""
        from deepfit.training.loggers import create_loggers

        loggers = create_loggers(tuple(t.log), run_dir, t.mlflow_uri)
        if not loggers:
            return None
        return cls(loggers, params, t.log_every_n_steps, t.batch_size)

    def on_fit_start(self, trainer, state) -> None:
        for logger in self.loggers:
            logger.log_params(self.params)

    def on_batch_end(self, trainer, state) -> None:
        if state.step % self.every_n_steps:
            return
        seen = max(state.batch_in_epoch * self.batch_size, 1)  # the last batch may be short
        values = {"train_loss_running": (trainer.epoch_loss / seen).item()}  # asked for: one sync
        for logger in self.loggers:
            logger.log_metrics(values, state.step, prefix="step/")

    def on_epoch_end(self, trainer, state, logs) -> None:
        for logger in self.loggers:
            logger.log_metrics(logs, state.epoch)

    def finish(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        for logger in self.loggers:
            logger.finish(run_dir, metrics)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()
