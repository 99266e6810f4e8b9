"""`load`: a fitted estimator from a run directory (saved by `est.save`, or written by
`deepfit train` on a table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfit.core.io import read_json
from deepfit.core.notes import Notes
from deepfit.errors import RunDirError
from deepfit.lifecycle.in_memory import Fitted
from deepfit.lifecycle.predictor import Predictor
from deepfit.sklearn.estimators import DeepClassifier, DeepRegressor

ESTIMATORS = {"DeepClassifier": DeepClassifier, "DeepRegressor": DeepRegressor}


def load(path: str | Path, device: str = "cpu") -> DeepClassifier | DeepRegressor:
    """The fitted estimator saved in the run directory `path`, predicting as it did when saved
    (the weights and preprocessing are read by Predictor.load: safetensors and JSON, checked).
    A run of `deepfit train` on a table loads too: a DeepClassifier or DeepRegressor by its task,
    with its settings as parameters. Raises SourceNotFoundError, RunDirError, IntegrityError."""
    path = Path(path)
    predictor = Predictor.load(path, device=device)
    record = read_json(path / "config.json")
    saved = record.get("sklearn") or {}
    cls = ESTIMATORS.get(saved.get("estimator")) or (
        DeepClassifier if predictor.task == "classification" else DeepRegressor)
    if (cls is DeepClassifier) != (predictor.task == "classification"):
        raise RunDirError(f"{path}/config.json names {cls.__name__} but the model does {predictor.task}")
    params = saved.get("params") or _params_of_run(record, cls)
    est = cls(**{k: v for k, v in params.items() if k in cls().get_params()})
    history = pd.read_csv(path / "history.csv").to_dict("records") if (path / "history.csv").exists() else []
    metrics = read_json(path / "metrics.json") if (path / "metrics.json").exists() else {}
    notes = Notes(list(record.get("decisions", [])), list(record.get("warnings", [])),
                  list(record.get("findings", [])))
    est.run_ = Fitted(predictor, record, history, [], metrics, notes, path)
    est.history_ = history
    est._columns = list(saved.get("columns") or record.get("data", {}).get("columns")
                        or predictor.preprocessor.columns)
    est.n_features_in_ = int(saved.get("n_features_in") or len(predictor.preprocessor.columns))
    names = saved.get("feature_names_in")
    if names is None and not saved:  # a run of `deepfit train` on a table: its columns
        names = list(predictor.preprocessor.columns)
    if names is not None:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    if cls is DeepClassifier:
        est.classes_ = np.asarray(saved.get("classes") or predictor.classes)
    return est


def _params_of_run(record: dict[str, Any], cls: type) -> dict[str, Any]:
    """A `deepfit train` run's settings as the estimator's parameters."""
    settings = record.get("settings", {})
    params = {k: settings[k] for k in cls().get_params() if k in settings}
    params["model"] = record.get("model", {}).get("name")
    params["random_state"] = settings.get("seed")
    return params
