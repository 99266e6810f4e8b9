"""Making the loggers a run asks for (`--log`), and checking their packages before any work."""

from __future__ import annotations

from pathlib import Path

from deepfit.errors import SettingsError
from deepfit.training.loggers.base import LOGGERS, Logger


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
