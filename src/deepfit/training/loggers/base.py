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

from deepfit.errors import SettingsError

LOGGERS = ("csv", "tensorboard", "mlflow")


class Logger:
    """One experiment tracker. Values arrive as Python floats, already on the host."""

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int, prefix: str = "") -> None: ...

    def finish(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        """The run is saved in `run_dir` with its test `metrics`: log them and close."""

    def close(self) -> None:
        """Training ended without a saved run (an error): close what is open."""


def create_loggers(names: tuple[str, ...] | list[str], run_dir: Path,
                   mlflow_uri: str | None = None) -> list[Logger]:
    """The loggers `names` asks for (csv is history.csv, always written: none is made for it).
    Raises SettingsError for an unknown name, MissingExtraError for a missing package."""
    unknown = sorted(set(names) - set(LOGGERS))
    if unknown:
        raise SettingsError(f"unknown logger {', '.join(map(repr, unknown))}; choose from "
                            f"{', '.join(LOGGERS)}")
    loggers: list[Logger] = []
    if "tensorboard" in names:
        from deepfit.training.loggers.tensorboard import TensorBoardLogger

        loggers.append(TensorBoardLogger(Path(run_dir) / "tensorboard"))
    if "mlflow" in names:
        from deepfit.training.loggers.mlflow import MLflowLogger

        loggers.append(MLflowLogger(mlflow_uri or "sqlite:///mlruns.db", run_name=Path(run_dir).name))
    return loggers


def check_loggers(names: tuple[str, ...] | list[str]) -> None:
    """Before anything is read or written: each asked-for tracker's package is there
    (MissingExtraError naming its extra otherwise)."""
    from deepfit.core.extras import import_extra

    for name in names:
        if name in ("tensorboard", "mlflow"):
            import_extra(name, name, f"--log {name}")


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The plain numbers of a metrics dict (nested tables, lists and text left out)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
