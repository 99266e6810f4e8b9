"""A modality from outside deepfit: "pairs" of two feature vectors per sample, [N, 2, F], is
registered from this test module through the public interface (a Modality subclass with its
reader and preprocessor, one model), and trained, checked, saved, loaded and predicted end to
end without touching deepfit's own files. The task: is the right vector a noisy copy of the
left one, or another vector? A model that compares the two members learns it; one that sees a
single member cannot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import deepfit
from deepfit.checks.arrays import ArrayKind, audit_arrays
from deepfit.data.dataset import Dataset
from deepfit.data.readers import ReadRequest, reader_names
from deepfit.data.targets import labelled_target
from deepfit.errors import PredictInputError
from deepfit.modalities import Modality, get_modality, modality_names, register_modality
from deepfit.models import modalities as model_modalities
from deepfit.models.registry import InputSpec, OutputSpec, register


@dataclass
class PairSource:
    """The toy modality's source: the left and right members, each [N, F]."""

    left: np.ndarray
    right: np.ndarray


def read_pairs(request: ReadRequest) -> Dataset | None:
    if not isinstance(request.source, PairSource):
        return None  # not ours: the next reader is asked
    X = np.stack([request.source.left, request.source.right], axis=1).astype(np.float32)
    y, task = labelled_target(pd.Series(np.asarray(request.y), name="target"), "target",
                              request.task, request.notes, request.held_out)
    return Dataset(X, y, "pairs", "target", task, modality="pairs")


class PairPreprocessor:
    """Each feature standardised with the training members' mean and std (both members)."""

    columns = ["left", "right"]  # noqa: RUF012

    def __init__(self) -> None:
        self.mean: list[float] = []
        self.std: list[float] = []

    def fit(self, X: np.ndarray, notes: Any = None) -> PairPreprocessor:
        flat = np.asarray(X, dtype=np.float64).reshape(-1, X.shape[-1])
        self.mean, self.std = flat.mean(0).tolist(), (flat.std(0) + 1e-8).tolist()
        return self

    def transform(self, X: Any, notes: Any = None) -> np.ndarray:
        if isinstance(X, PairSource):
            X = np.stack([X.left, X.right], axis=1)
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 3 or X.shape[1:] != (2, len(self.mean)):
            raise PredictInputError(f"pairs are [N, 2, {len(self.mean)}], not {list(X.shape)}")
        return ((X - np.float32(self.mean)) / np.float32(self.std)).astype(np.float32)

    def input_spec(self) -> dict[str, Any]:
        F = len(self.mean)
        return {"n_features": F, "n_dense": F, "cardinalities": (), "modality": "pairs",
                "shape": (2, F)}

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairPreprocessor:
        pre = cls()
        pre.mean, pre.std = list(d["mean"]), list(d["std"])
        return pre


class Siamese(nn.Module):
    """One encoder for both members; the head sees |a - b| and a * b."""

    def __init__(self, n_features: int, n_outputs: int, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.head = nn.Linear(2 * hidden, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 2, F] → [B, n_outputs]
        a, b = self.encoder(x[:, 0]), self.encoder(x[:, 1])
        return self.head(torch.cat([(a - b).abs(), a * b], dim=1))


@register("pairs_siamese", modalities=("pairs",))
def pairs_siamese(input_spec: InputSpec, output_spec: OutputSpec, *, hidden: int = 32) -> nn.Module:
    return Siamese(input_spec.shape[-1], output_spec.n_outputs, int(hidden))


PAIRS = ArrayKind(noun="pair", channel_axis=-1, blank_kind="one value in both members")


class Pairs(Modality):
    name = "pairs"
    default_model = "pairs_siamese"
    preprocessor = PairPreprocessor
    layout = "[2, F]"
    natural_shape = (2, 16)
    quick_shape = (2, 4)
    readers = (("pairs", read_pairs, 15),)

    def audit(self, data, splits, test_data, *, seed=0):
        return audit_arrays(data, splits, test_data, PAIRS)

    def synthetic_rows(self, pre, n, rng):
        return rng.normal(pre.mean, pre.std, (n, 2, len(pre.mean))).astype(np.float32)


register_modality(Pairs())  # the one registration line


def pairs(n: int, seed: int, features: int = 6) -> tuple[PairSource, np.ndarray]:
    rng = np.random.default_rng(seed)
    left = rng.normal(size=(n, features))
    same = rng.random(n) < 0.5
    right = np.where(same[:, None], left + 0.1 * rng.normal(size=(n, features)),
                     rng.normal(size=(n, features)))
    return PairSource(left, right), same.astype(np.int64)


def test_the_toy_modality_is_registered_with_its_reader_and_model():
    assert "pairs" in modality_names()
    assert reader_names().index("pairs") < reader_names().index("tables")
    assert model_modalities("pairs_siamese") == ("pairs",)
    assert get_modality("pairs").example_input().shape == (2, 16)


def test_a_registered_modality_trains_end_to_end_and_its_run_loads(tmp_path):
    source, y = pairs(600, seed=0)
    run = deepfit.train(source, y=y, out=tmp_path / "run", epochs=40, seed=0)
    assert (run.path / "report.html").exists()
    config = run.config
    assert config["data"]["modality"] == "pairs"
    assert config["model"]["name"] == "pairs_siamese"  # the modality's default model
    assert run.metrics["accuracy"] > 0.9  # the two members are compared

    predictor = deepfit.load(run.path)  # its preprocessor comes back by its kind, "pairs"
    assert isinstance(predictor.preprocessor, PairPreprocessor)
    new, truth = pairs(200, seed=1)
    X = np.stack([new.left, new.right], axis=1).astype(np.float32)
    assert (predictor.predict(X) == truth).mean() > 0.9
    # the loaded model gives the outputs of the model that saved it
    np.testing.assert_allclose(predictor.outputs(X), run.predictor.outputs(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(predictor.predict(new), predictor.predict(X))  # its own source too
    with pytest.raises(PredictInputError, match=r"\[N, 2, 6\]"):
        predictor.predict(X[:, 0])
    # benchmark inputs: the run's model on synthetic pairs its modality draws
    result = deepfit.benchmark(run=run.path, quick=True)
    assert result.modality == "pairs" and result.input_shape == [2, 6]


def test_a_registered_modality_is_audited_by_its_own_checks():
    source, y = pairs(300, seed=2)
    source.left[10], source.right[10] = source.left[3], source.right[3]  # a planted duplicate
    y[10] = 1 - y[3]  # … with the other label
    findings = deepfit.check(source, y=y)
    checks = {f.check for f in findings}
    assert "conflicting_labels" in checks or "duplicates" in checks
    planted = [f for f in findings if f.check in ("conflicting_labels", "duplicates")]
    assert any("10" in f.subject or "3" in f.subject for f in planted)


def test_a_model_of_another_modality_is_refused_before_training(tmp_path):
    source, y = pairs(100, seed=3)
    with pytest.raises(deepfit.DeepfitError, match="pairs"):
        deepfit.train(source, y=y, model="mlp", out=tmp_path / "run", epochs=1)
    assert not (tmp_path / "run").exists()
