"""The logger interface: what a run tells an experiment tracker, and when.

    on_fit_start   log_params(settings)              the run's resolved settings
    epoch end      log_metrics(logs, step=epoch)     every history column (losses, metrics, lr…)
    every N steps  log_metrics({...}, step=step)     only with --log-every-n-steps
    run saved      finish(run_dir, metrics)          test metrics, plots, the run directory

Each tracker's package is imported when its logger is made (core/extras.py: import_extra), so a
missing one is a MissingExtraError naming the extra before any training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LOGGERS = ("csv", "tensorboard", "mlflow")


class Logger:
    """One experiment tracker. Values arrive as Python floats, already on the host."""

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int, prefix: str = "") -> None: ...

    def finish(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        """The run is saved in `run_dir` with its test `metrics`: log them and close."""

    def close(self) -> None:
        """Training ended without a saved run (an error): close what is open."""


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The plain numbers of a metrics dict (nested tables, lists and text left out)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
