"""The sequence preprocessor: each channel standardised with the mean and standard deviation of
the training split's values (the training windows' rows only)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deepfit.core.notes import Notes
from deepfit.core.words import noun_for, plural
from deepfit.data.numbers import CLIP_STD
from deepfit.errors import DataFormatError, PredictInputError, RunDirError
from deepfit.modalities.sequence.reader import MODALITY, sequence_array


class SequencePreprocessor:
    """Per-channel standardisation fitted on the training sequences; missing or infinite values
    become the channel's mean (0 after standardising). Input [N, T, C] (or [N, T] with one
    channel, or one sequence [T, C]); output float32 [N, T, C]. Fitted on a table's rows read as
    sequences, it keeps the step columns' names (`steps`): a DataFrame given later is read by
    them, in the training's order, other columns (the target, an ID) left out."""

    def __init__(self) -> None:
        self.steps: list[str] | None = None
        self.length = 0
        self.mean: list[float] = []
        self.std: list[float] = []

    def fit(self, X: Any, notes: Notes | None = None) -> SequencePreprocessor:
        X = sequence_array(X).astype(np.float64)
        finite = np.isfinite(X)
        n_bad = int((~finite).sum())
        if n_bad:
            (notes or Notes()).warn(f"{plural(n_bad, 'missing or infinite value')} in the training "
                                    "sequences: set to their channel's mean")
        masked = np.where(finite, X, np.nan)
        if np.isnan(masked).all(axis=(0, 1)).any():
            raise DataFormatError("a channel has no finite value in the training split")
        self.length = X.shape[1]
        self.mean = np.nanmean(masked, axis=(0, 1)).tolist()
        std = np.nanstd(masked, axis=(0, 1))
        self.std = np.where(std > 0, std, 1.0).tolist()
        return self

    def transform(self, X: Any, notes: Notes | None = None) -> np.ndarray:
        X = self._shaped(X)
        with np.errstate(over="ignore", invalid="ignore"):
            z = (X.astype(np.float64) - np.asarray(self.mean)) / np.asarray(self.std)
        bad = ~np.isfinite(z)
        if bad.any():
            (notes or Notes()).warn(f"{plural(int(bad.sum()), 'missing or infinite value')} set to their "
                                    "channel's training mean")
            z[bad] = 0.0
        return np.clip(z, -CLIP_STD, CLIP_STD).astype(np.float32)

    def _shaped(self, X: Any) -> np.ndarray:
        if self.steps and isinstance(X, pd.DataFrame):
            X = self._steps_of(X)
        try:
            X = np.asarray(X)
        except (ValueError, TypeError) as exc:
            raise PredictInputError(f"sequences cannot be read as an array ({exc})") from None
        T, C = self.length, len(self.mean)
        if X.ndim == 2 and X.shape == (T, C) and C > 1:
            X = X[None]  # one sequence
        if X.ndim == 2 and C == 1:
            X = X[:, :, None]
        if X.ndim != 3 or X.shape[1:] != (T, C):
            raise PredictInputError(f"expected sequences of {T} steps × {plural(C, 'channel')} "
                                    f"([N, {T}, {C}]), got an array of shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise PredictInputError(f"sequences must be numeric, not {X.dtype}")
        return X

    def _steps_of(self, frame: pd.DataFrame) -> np.ndarray:
        """A table's step columns, by the training's names and in its order, as numbers [N, T]."""
        names = [str(c) for c in frame.columns]
        missing = [s for s in self.steps if s not in names]
        if missing:
            raise PredictInputError(f"missing {noun_for(len(missing), 'column')} the model was "
                                    f"trained on: {', '.join(map(repr, missing[:10]))}"
                                    + (f", … ({len(missing)} in all)" if len(missing) > 10 else ""))
        frame = frame.set_axis(names, axis=1)
        out = np.empty((len(frame), len(self.steps)), np.float64)
        for i, step in enumerate(self.steps):
            values = pd.to_numeric(frame[step], errors="coerce")
            if values.isna().sum() > frame[step].isna().sum():
                raise PredictInputError(f"column {step!r} holds values that are not numbers")
            out[:, i] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    @property
    def columns(self) -> list[str]:
        return [f"channel {i}" for i in range(len(self.mean))]

    def input_spec(self) -> dict[str, Any]:
        C = len(self.mean)
        return {"n_features": C, "n_dense": C, "cardinalities": (), "modality": MODALITY,
                "shape": (self.length, C)}

    def to_dict(self) -> dict[str, Any]:
        return {"length": self.length, "mean": self.mean, "std": self.std} | (
            {"steps": self.steps} if self.steps else {})

    def to_spec(self) -> dict[str, Any]:
        """Everything another language needs to turn raw sequences into the network's input
        (the `preprocess` part of an export's preprocess.json, deploy/export.py)."""
        return {"input_layout": "[N, T, C] float32: N sequences of T steps of C channels",
                "length": self.length, "channels": len(self.mean), "mean": self.mean, "std": self.std,
                "clip": CLIP_STD, "steps": self.steps,  # a table's step columns, read by name in this order
                "rule": (f"per channel c: z = (x - mean[c]) / std[c]; a missing or infinite value "
                         f"becomes 0.0 (the channel's mean); z clipped to ±{CLIP_STD:g}; a sequence "
                         "of one channel may come as [N, T]")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SequencePreprocessor:
        from deepfit.core.run_checks import finite_numbers

        pre, where = cls(), "model.json's preprocessor"
        length = d.get("length")
        if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= 10**7:
            raise RunDirError(f"{where}'s 'length' is {length!r}, not a whole number of steps")
        pre.length = length
        pre.mean = finite_numbers(d.get("mean"), f"{where}'s 'mean'")
        pre.std = finite_numbers(d.get("std"), f"{where}'s 'std'", positive=True)
        steps = d.get("steps")
        if steps is not None:
            if (not isinstance(steps, list) or len(steps) != length or len(pre.mean) != 1
                    or not all(isinstance(s, str) for s in steps) or len(set(steps)) != len(steps)):
                raise RunDirError(f"{where}'s 'steps' must be the {length} distinct names of a "
                                  "one-channel sequence's columns")
            pre.steps = steps
        return pre
