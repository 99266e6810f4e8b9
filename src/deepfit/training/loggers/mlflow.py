"""MLflow (mlflow.tracking.MlflowClient): the run's settings as params, every history column
per epoch as metrics (step = epoch), the test metrics under test_*, and the run directory as
artifacts, in the experiment "deepfit" of the tracking URI (default sqlite:///mlruns.db: a
SQLite database in the working directory, which `mlflow ui --backend-store-uri` opens)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deepfit.core.extras import import_extra
from deepfit.training.loggers.base import Logger, scalars

EXPERIMENT = "deepfit"


def _artifacts_beside(uri: str) -> str | None:
    """A SQLite store's artifacts in an mlruns/ folder beside its database file (MLflow's
    default is ./mlruns in the working directory, wherever the database is); None otherwise."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlruns").as_uri()


class MLflowLogger(Logger):
    def __init__(self, uri: str, run_name: str | None = None) -> None:
        tracking = import_extra("mlflow.tracking", "mlflow", "--log mlflow")
        entities = import_extra("mlflow.entities", "mlflow", "--log mlflow")
        self._Metric, self._Param = entities.Metric, entities.Param
        self.client = tracking.MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(EXPERIMENT)
        experiment = found.experiment_id if found else self.client.create_experiment(
            EXPERIMENT, artifact_location=_artifacts_beside(uri))
        self.run_id = self.client.create_run(experiment, run_name=run_name).info.run_id

    def log_params(self, params: dict[str, Any]) -> None:
        items = [self._Param(k, str(v)[:6000]) for k, v in params.items() if v is not None]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int, prefix: str = "") -> None:
        now = int(time.time() * 1000)
        items = [self._Metric(prefix.replace("/", "_") + k, v, now, step)
                 for k, v in scalars(metrics).items() if k != "epoch"]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def finish(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        self.log_metrics(scalars(metrics), step=0, prefix="test_")
        self.client.log_artifacts(self.run_id, str(run_dir))
        self.client.set_terminated(self.run_id, "FINISHED")

    def close(self) -> None:
        self.client.set_terminated(self.run_id, "FAILED")
