"""What DeepClassifier and DeepRegressor share: their parameters, the validation of inputs with
scikit-learn's own functions (its error types and messages), the fit over deepfit's training
(lifecycle/in_memory.py), the tags, and pickling with the weights as safetensors bytes."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from deepfit.data.common import array_frame, named_columns
from deepfit.lifecycle.in_memory import Fitted, fit_in_memory
from deepfit.sklearn.state import predictor_bytes, predictor_from_bytes


class DeepfitWarning(UserWarning):
    """A warning of deepfit's data audit or training (the notes `deepfit train` prints), raised
    by `fit` as a Python warning. Error-level audit findings, which stop `deepfit train`, are
    warnings here too (their text says so): in a pipeline or a search the caller decides."""


# the estimator's parameter → deepfit's setting of the same meaning (None: deepfit's default)
MODEL_PARAMS = ("hidden", "depth", "width", "dropout")
TRAIN_PARAMS = ("epochs", "batch_size", "lr", "weight_decay", "patience", "schedule", "imbalance",
                "val_size", "device")


class DeepEstimator(BaseEstimator):
    """The parameters and fit of both estimators (see DeepClassifier for their meaning)."""

    _task = ""  # "classification" or "regression"

    def __init__(self, model: str | None = None, *, hidden: tuple[int, ...] | None = None,
                 depth: int | None = None, width: int | None = None, dropout: float | None = None,
                 epochs: int = 100, batch_size: int = 64, lr: float = 1e-3,
                 weight_decay: float = 1e-2, patience: int = 10, schedule: str = "plateau",
                 imbalance: str = "auto", val_size: float = 0.15, random_state: Any = None,
                 device: str = "auto", verbose: int = 0) -> None:
        self.model = model
        self.hidden = hidden
        self.depth = depth
        self.width = width
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.schedule = schedule
        self.imbalance = imbalance
        self.val_size = val_size
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ----------------------------------------------------------------- fit
    def settings(self) -> dict[str, Any]:
        """The parameters as `deepfit.train` takes them (None: deepfit's default)."""
        settings = {name: getattr(self, name) for name in (*MODEL_PARAMS, *TRAIN_PARAMS)}
        if settings["hidden"] is not None:
            settings["hidden"] = tuple(settings["hidden"])
        rs = self.random_state
        seed = 0 if rs is None else rs if isinstance(rs, (int, np.integer)) else \
            int(check_random_state(rs).randint(2**31 - 1))
        return {**settings, "model": self.model, "seed": int(seed),
                "progress": bool(self.verbose), "imbalance": None if self._task == "regression"
                else self.imbalance}

    def _fit(self, frame: pd.DataFrame, target: np.ndarray) -> Fitted:
        """Train on the validated features (`_frame_for_fit`) and `target`, raise the run's
        warnings as DeepfitWarning, and set the fitted attributes."""
        fitted = fit_in_memory(frame, target, task=self._task, **self.settings())
        for message in fitted.notes.warnings:
            warnings.warn(message, DeepfitWarning, stacklevel=3)
        self.run_ = fitted
        self.history_ = fitted.history
        return fitted

    def _frame_for_fit(self, X: Any) -> pd.DataFrame:
        """A DataFrame goes to deepfit's table reader as it is (categories and missing values
        handled as by `deepfit train`): only its names and width are recorded. Anything else
        is checked by scikit-learn (numbers, 2-D, finite apart from NaN, at least 2 rows)."""
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, skip_check_array=True)  # feature_names_in_, n_features_in_
            check_array(X, dtype=None, ensure_all_finite=False, ensure_min_samples=2)
            frame = named_columns(X, "X")
        else:
            array = validate_data(self, X, dtype="numeric", ensure_all_finite="allow-nan",
                                  ensure_min_samples=2)
            frame = array_frame(np.asarray(array, dtype=np.float64))
        self._columns = list(frame.columns)  # the names deepfit's preprocessing knows them by
        return frame

    def _check_y(self, X: Any, y: Any, numeric: bool) -> np.ndarray:
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        y = check_array(y, ensure_2d=False, dtype="numeric" if numeric else None,
                        ensure_all_finite=True, ensure_min_samples=0)
        y = column_or_1d(y, warn=True)
        if len(y) != len(X):
            raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                             f"[{len(X)}, {len(y)}]")
        return y

    # ------------------------------------------------------------- predict
    def _outputs_input(self, X: Any) -> pd.DataFrame:
        """New rows as the fitted preprocessing takes them, checked by scikit-learn first: a
        DataFrame with the fitted names as it is, any other rows by position."""
        check_is_fitted(self)
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=False, skip_check_array=True)
            if hasattr(self, "feature_names_in_"):
                return named_columns(X, "X")
            X = X.to_numpy()
        if hasattr(self, "feature_names_in_"):  # fitted on a DataFrame, given an array
            array = check_array(X, dtype=None, ensure_all_finite=False)
            validate_data(self, array, reset=False, skip_check_array=True)
        else:
            array = validate_data(self, X, reset=False, dtype="numeric",
                                  ensure_all_finite="allow-nan").astype(np.float64)
        return pd.DataFrame(array, columns=self._columns)

    def save(self, path: Any) -> Any:
        """Write the fitted estimator as a deepfit run directory at `path` (which must not exist
        or be empty): config.json (with the estimator's class and parameters), the weights as
        safetensors, model.json, history.csv, metrics.json (of the validation split). `deepfit
        predict`, `deepfit report` and `deepfit.sklearn.load` read it. → the path."""
        from deepfit.lifecycle.in_memory import save_fitted

        check_is_fitted(self)
        extra = {"sklearn": {"estimator": type(self).__name__,
                             "params": _json_params(self.get_params()),
                             "n_features_in": int(self.n_features_in_),
                             "columns": list(self._columns),
                             "feature_names_in": (list(map(str, self.feature_names_in_))
                                                  if hasattr(self, "feature_names_in_") else None),
                             "classes": ([c.item() if hasattr(c, "item") else c for c in self.classes_]
                                         if hasattr(self, "classes_") else None)}}
        return save_fitted(path, self.run_, extra)

    # ---------------------------------------------------- scikit-learn API
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "run_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are imputed (the table preprocessing)
        tags.non_deterministic = self.device not in ("cpu", "auto")  # GPU kernels may vary
        return tags

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        if "run_" in state:  # the predictor as model.json + model.safetensors bytes
            run = state.pop("run_")
            state["_run_parts"] = ({k: v for k, v in vars(run).items() if k != "predictor"},
                                   predictor_bytes(run.predictor))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        parts = state.pop("_run_parts", None)
        super().__setstate__(state)
        if parts is not None:
            fields, files = parts
            self.run_ = Fitted(predictor=predictor_from_bytes(files), **fields)
            self.history_ = self.run_.history


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters as JSON holds them (a random_state object as None, said in the name)."""
    out = {}
    for key, value in params.items():
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, np.integer):
            value = int(value)
        elif not (value is None or isinstance(value, (bool, int, float, str, list))):
            value = None
        out[key] = value
    return out
