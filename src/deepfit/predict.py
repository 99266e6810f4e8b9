"""A trained model with its preprocessing: predictions from raw data, saved and loaded as
safetensors + JSON (nothing is unpickled)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepfit import __version__
from deepfit.data.preprocess import Preprocessor, TargetEncoder
from deepfit.errors import PredictInputError, SourceNotFoundError
from deepfit.evaluate.metrics import metric_fn
from deepfit.io import load_weights, read_json, save_weights, write_json
from deepfit.models import InputSpec, OutputSpec, create
from deepfit.notes import Notes

MODEL_JSON, WEIGHTS = "model.json", "model.safetensors"
EVAL_BATCH = 4096


class Predictor:
    def __init__(
        self,
        model: nn.Module,
        preprocessor: Preprocessor,
        target: TargetEncoder,
        architecture: dict[str, Any],
    ) -> None:
        self.model = model.eval()
        self.preprocessor = preprocessor
        self.target = target
        self.architecture = architecture  # name, settings, input_spec, output_spec
        self.device = next(model.parameters()).device

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
        feats = self.features(X, notes).to(self.device)
        self.model.eval()
        chunks = [self.model(feats[i : i + EVAL_BATCH]) for i in range(0, len(feats), EVAL_BATCH)]
        return torch.cat(chunks).float().cpu()

    def predict(self, X: Any) -> np.ndarray:
        out = self.outputs(X)
        if self.task == "classification":
            return self.target.inverse(out.argmax(dim=1).numpy())
        return self.target.inverse(out.reshape(-1).double().numpy())

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.task != "classification":
            raise PredictInputError("predict_proba is for classification; this model does regression")
        return torch.softmax(self.outputs(X).double(), dim=1).numpy()

    def predict_frame(self, X: Any) -> pd.DataFrame:
        """Predictions as a table: the label and one probability column per class, or the value."""
        if self.task == "regression":
            return pd.DataFrame({"prediction": self.predict(X)})
        proba = self.predict_proba(X)
        frame = pd.DataFrame({"prediction": self.target.inverse(proba.argmax(axis=1))})
        for i, label in enumerate(self.classes):
            frame[f"proba_{label}"] = proba[:, i]
        return frame

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """Metrics on labelled data, over all rows at once."""
        y = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y))
        target = torch.from_numpy(self.target.transform(y))
        out = self.outputs(X)
        metrics = metric_fn(self.task, self.target.mean, self.target.std)(out, target)
        return {k: float(v) for k, v in metrics.items()} | {"n": len(target)}

    def _frame(self, X: Any) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        array = np.asarray(X)
        if array.ndim == 1:
            array = array[None, :]
        columns = self.preprocessor.columns
        if array.ndim != 2 or array.shape[1] != len(columns):
            raise PredictInputError(
                f"expected rows of {len(columns)} features ({', '.join(columns[:8])}"
                f"{', …' if len(columns) > 8 else ''}), got an array of shape {array.shape}"
            )
        return pd.DataFrame(array, columns=columns)

    # ------------------------------------------------------ save and load
    def save(self, run_dir: Path) -> None:
        sha = save_weights(Path(run_dir) / WEIGHTS, self.model.state_dict())
        write_json(Path(run_dir) / MODEL_JSON, {
            "format": 1,
            "deepfit_version": __version__,
            "architecture": self.architecture,
            "preprocessor": self.preprocessor.to_dict(),
            "target": self.target.to_dict(),
            "weights": {"file": WEIGHTS, "sha256": sha},
        })

    @classmethod
    def load(cls, run_dir: Path | str, device: str = "cpu") -> Predictor:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise SourceNotFoundError(f"no such run directory: {run_dir}")
        meta = read_json(run_dir / MODEL_JSON)
        arch = meta["architecture"]
        model = create(
            arch["name"], InputSpec.from_dict(arch["input_spec"]), OutputSpec(**arch["output_spec"]),
            **arch["settings"],
        )
        weights = load_weights(run_dir / meta["weights"]["file"], meta["weights"]["sha256"])
        model.load_state_dict(weights)
        return cls(model.to(device), Preprocessor.from_dict(meta["preprocessor"]),
                   TargetEncoder.from_dict(meta["target"]), arch)
