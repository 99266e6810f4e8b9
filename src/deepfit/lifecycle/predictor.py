"""A trained model with its preprocessing: predictions from raw data, saved and loaded as
safetensors + JSON (nothing is unpickled)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepfit._version import __version__
from deepfit.core.io import load_weights, save_weights, write_json
from deepfit.core.notes import Notes
from deepfit.core.run_checks import (
    build_on_meta,
    check_architecture,
    read_model_json,
    weights_file,
    weights_header,
)
from deepfit.data.batches import eval_rows
from deepfit.data.targets import TargetEncoder
from deepfit.errors import (
    DeepfitError,
    PredictInputError,
    RunDirError,
    SettingsError,
    SourceNotFoundError,
)
from deepfit.evaluation.full_metrics import Evaluation, evaluate_outputs, predict_codes
from deepfit.modalities import Modality, get_modality, preprocessor_from_dict, preprocessor_to_dict
from deepfit.models import InputSpec, OutputSpec, create
from deepfit.models.quantized import DYNAMIC_INT8, load_quantized, quantized_state

MODEL_JSON, WEIGHTS = "model.json", "model.safetensors"


class Predictor:
    def __init__(
        self,
        model: nn.Module,
        preprocessor: Any,  # a registered modality's preprocessor (modalities/)
        target: TargetEncoder,
        architecture: dict[str, Any],
        threshold: float | None = None,
        series: dict[str, Any] | None = None,
        anomaly: dict[str, Any] | None = None,
    ) -> None:
        self.model = model.eval()
        self.preprocessor = preprocessor
        self.target = target
        self.architecture = architecture  # name, settings, input_spec, output_spec
        # a model with every layer quantised (models/quantized.py) may have no parameter left
        self.device = next(model.parameters(), torch.empty(0)).device
        # binary only: predict class 1 where P(class 1) >= threshold (None: the most probable class)
        self.threshold = threshold
        # trained on a time series' windows: channels, target, window, horizon, time column
        self.series = series
        # the anomaly task: {"threshold": score at or above which a row is flagged, "contamination"}
        self.anomaly = anomaly

    @property
    def task(self) -> str:
        return self.target.task

    @property
    def classes(self) -> list[Any]:
        return self.target.classes

    # ----------------------------------------------------------- predict
    def features(self, X: Any, notes: Notes | None = None) -> torch.Tensor:
        return torch.from_numpy(self.preprocessor.transform(self._frame(X), notes))

    @torch.no_grad()
    def outputs(self, X: Any, notes: Notes | None = None) -> torch.Tensor:
        """Raw model outputs (logits, or standardised values) for raw input rows, on the CPU."""
        self.model.eval()
        # in batches of eval_rows (data/batches.py): the rule of the training's evaluation batches
        if hasattr(X, "chunks"):  # image files (modalities/image/files.py): decoded a chunk at a time
            parts = (self.features(chunk, notes) for chunk in X.chunks(eval_rows(math.prod(X.shape[1:]))))
        else:
            feats = self.features(X, notes)
            rows = eval_rows(feats[0].numel() if len(feats) else 1)
            parts = (feats[i : i + rows] for i in range(0, len(feats), rows))
        chunks = [self.model(part.to(self.device)) for part in parts]
        return torch.cat(chunks).float().cpu()

    def anomaly_score(self, X: Any) -> np.ndarray:
        """Anomaly scores [N] of raw rows: each row's reconstruction error (the mean squared
        error over its preprocessed values, models/autoencoder.py); larger is more anomalous."""
        if self.task != "anomaly":
            raise PredictInputError(f"anomaly scores come from an anomaly run; this model does {self.task}")
        return self.outputs(X).reshape(-1).double().numpy()

    def predict(self, X: Any) -> np.ndarray:
        if self.task == "anomaly":  # 1 where the score reaches the validation threshold
            return (self.anomaly_score(X) >= self.anomaly["threshold"]).astype(np.int64)
        out = self.outputs(X)
        if self.task == "classification":
            codes = predict_codes(torch.softmax(out.double(), dim=1), self.threshold)
            return self.target.inverse(codes.numpy())
        if self.target.n_targets > 1:  # multi-step forecasts: [N, H]
            return self.target.inverse(out.double().numpy())
        return self.target.inverse(out.reshape(-1).double().numpy())

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.task != "classification":
            raise PredictInputError("predict_proba is for classification; this model does regression")
        return torch.softmax(self.outputs(X).double(), dim=1).numpy()

    def predict_frame(self, X: Any) -> pd.DataFrame:
        """Predictions as a table: the label and one probability column per class, or the value;
        anomaly: anomaly_score and is_anomaly."""
        if self.task == "anomaly":
            scores = self.anomaly_score(X)
            return pd.DataFrame({"anomaly_score": scores,
                                 "is_anomaly": scores >= self.anomaly["threshold"]})
        if self.task == "regression":
            values = self.predict(X)
            if values.ndim == 2:  # multi-step forecasts: one column per step ahead
                return pd.DataFrame(values, columns=[f"prediction_{k + 1}" for k in range(values.shape[1])])
            return pd.DataFrame({"prediction": values})
        proba = self.predict_proba(X)
        codes = predict_codes(torch.from_numpy(proba), self.threshold).numpy()
        frame = pd.DataFrame({"prediction": self.target.inverse(codes)})
        for i, label in enumerate(self.classes):
            frame[f"proba_{label}"] = proba[:, i]
        return frame

    def forecast(self, series: Any, all_windows: bool = False) -> pd.DataFrame:
        """Forecasts from a time series (a DataFrame with the training columns, or a CSV/Parquet
        path): the H steps after its last W rows, or with `all_windows` the forecast of every
        window of W rows (a rolling backtest, with the actual values). See deepfit/forecast.py."""
        from deepfit.lifecycle.forecast import forecast

        return forecast(self, series, all_windows=all_windows)

    def evaluate(self, X: Any, y: Any) -> dict[str, Any]:
        """Metrics on labelled data, over all rows at once (evaluation/full_metrics.py)."""
        return self.evaluation(X, y).metrics

    def evaluation(self, X: Any, y: Any) -> Evaluation:
        """The metrics and the arrays behind them: targets, predictions, probabilities. The
        anomaly task takes y None (no labels: the scores' summary only) or 0/1 labels."""
        if self.task == "anomaly":
            from deepfit.anomaly.scores import anomaly_evaluation

            labels = None if y is None else self.target.transform(y)
            return anomaly_evaluation(self.anomaly_score(X), labels, self.anomaly["threshold"],
                                      self.anomaly.get("contamination"))
        if not isinstance(y, (pd.Series, pd.DataFrame)):
            y = np.asarray(y)
            y = pd.Series(y) if y.ndim == 1 else pd.DataFrame(y)  # [N, H]: multi-step targets
        target = torch.from_numpy(self.target.transform(y))
        return evaluate_outputs(self.task, self.outputs(X), target, classes=self.classes,
                                threshold=self.threshold, target_mean=self.target.mean,
                                target_std=self.target.std)

    @property
    def modality(self) -> Modality:
        """The registered modality of the data the model was trained on."""
        return get_modality(self.architecture["input_spec"].get("modality"))

    def _frame(self, X: Any) -> Any:
        """New samples as the preprocessor takes them (a table's arrays get their columns)."""
        return self.modality.prediction_input(self.preprocessor, X)

    # ------------------------------------------------------ save and load
    def save(self, run_dir: Path) -> None:
        quantized = self.architecture.get("quantization") is not None  # int8 tensors, plain
        sha = save_weights(Path(run_dir) / WEIGHTS, quantized_state(self.model) if quantized
                           else self.model.state_dict())
        write_json(Path(run_dir) / MODEL_JSON, {
            "format": 1,
            "deepfit_version": __version__,
            "architecture": self.architecture,
            "preprocessor": preprocessor_to_dict(self.preprocessor),
            "target": self.target.to_dict(),
            "threshold": self.threshold,
            "series": self.series,
            **({"anomaly": self.anomaly} if self.anomaly is not None else {}),
            "weights": {"file": WEIGHTS, "sha256": sha},
        })

    @classmethod
    def load(cls, run_dir: Path | str, device: str = "cpu", verify: bool = True) -> Predictor:
        """The predictor saved in `run_dir`. Before anything is built, model.json is checked
        (core/run_checks.py: keys, types, ranges), the weights file must be a regular file
        inside the run directory with a well-formed SHA-256, and the architecture, built on the
        meta device, must fit the names and shapes of the weights' header and the free memory;
        then the file is checked against its checksum and loaded. `verify=False` skips the
        checksum (a warning says so). Raises SourceNotFoundError, RunDirError, IntegrityError."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise SourceNotFoundError(f"no such run directory: {run_dir}")
        meta = read_model_json(run_dir, MODEL_JSON)
        path, sha = weights_file(run_dir, meta, verify)
        if not verify:
            logging.getLogger("deepfit").warning(f"{path}: checksum not verified (--no-verify)")
        arch = meta["architecture"]
        where = run_dir / MODEL_JSON

        def build() -> nn.Module:
            return create(arch["name"], InputSpec.from_dict(arch["input_spec"]),
                          OutputSpec(**arch["output_spec"]), **arch["settings"])

        quantization = arch.get("quantization")  # deepfit compress --method quantize
        if quantization is None:
            check_architecture(build_on_meta(build, where), weights_header(path), path)
        elif quantization != DYNAMIC_INT8:
            raise RunDirError(f"{where}: its quantization is {str(quantization)[:40]!r}; this deepfit "
                              f"reads {DYNAMIC_INT8!r}")
        elif torch.device(device).type != "cpu":
            raise SettingsError(f"{run_dir} holds an int8 model, which runs on the CPU only (device cpu)")
        weights = load_weights(path, sha)
        try:
            model = build()
            if quantization is None:
                model.load_state_dict(weights)
            else:  # the float architecture quantised again, its int8 weights set back
                model = load_quantized(model, weights)
            preprocessor = preprocessor_from_dict(meta["preprocessor"])
            target = TargetEncoder.from_dict(meta["target"])
            _check_inputs_agree(preprocessor.input_spec(), arch["input_spec"], where)
        except DeepfitError as exc:
            raise RunDirError(f"{where} is damaged: {exc}") from None
        except (TypeError, ValueError, RuntimeError, KeyError, AttributeError, IndexError) as exc:
            raise RunDirError(f"{where} is damaged ({type(exc).__name__}: {str(exc)[:200]})") from None
        return cls(model.to(device), preprocessor, target, arch, meta.get("threshold"), meta.get("series"),
                   meta.get("anomaly"))


def _check_inputs_agree(made: dict[str, Any], taken: dict[str, Any], where: Path) -> None:
    """The inputs the saved preprocessor makes are those the saved architecture takes."""
    for key, value in made.items():
        plain = list(value) if isinstance(value, tuple) else value
        if key in taken and taken[key] != plain:
            raise RunDirError(f"{where} is damaged: its preprocessor makes inputs with {key} "
                              f"{plain!r}, its architecture takes {taken[key]!r}")
