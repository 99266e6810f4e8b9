"""Preprocessing fitted on the training split only, saved with the model as plain JSON.

Output layout of `Preprocessor.transform` (one float32 matrix, so batches stay one tensor):
    [ standardised numbers | missing indicators | one-hot blocks | embedding indices ]
The first `n_dense` columns are dense features; the rest are category indices (slot 0 = unknown)
that the model embeds. `input_spec()` says where the boundary is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from deepfit.errors import DataFormatError, PredictInputError
from deepfit.notes import Notes

UNKNOWN = "<unknown>"
MISSING = "<missing>"
ONEHOT_MAX_CATEGORIES = 10  # more distinct values than this: an embedding instead
MOSTLY_NUMERIC = 0.9


@dataclass
class NumericColumn:
    name: str
    median: float
    mean: float
    std: float
    indicator: bool  # the training split had missing values here: add a 0/1 column


@dataclass
class CategoricalColumn:
    name: str
    categories: list[str]  # slot 0 is UNKNOWN, so index = position + 1
    encoding: str  # "onehot" or "embedding"

    @property
    def width(self) -> int:
        return len(self.categories) + 1


class Preprocessor:
    """Median imputation (+ indicator), standardisation, one-hot or embedding of categories."""

    def __init__(self) -> None:
        self.numeric: list[NumericColumn] = []
        self.categorical: list[CategoricalColumn] = []

    # ----------------------------------------------------------------- fit
    def fit(self, X: pd.DataFrame, notes: Notes | None = None) -> Preprocessor:
        notes = notes if notes is not None else Notes()
        self.numeric, self.categorical = [], []
        for name in X.columns:
            column = X[name]
            values = _as_numbers(column, name, fitting=True)
            if values is not None:
                n_inf = int(np.isinf(values).sum())
                if n_inf:
                    notes.warn(f"column {name!r}: {n_inf} infinite value(s) treated as missing")
                self.numeric.append(_fit_numeric(name, values))
            else:
                self.categorical.append(_fit_categorical(name, column))
        for col in self.categorical:
            notes.decide(
                f"column {col.name!r}: {len(col.categories)} categories, {col.encoding} encoding"
            )
        n_imputed = sum(c.indicator for c in self.numeric)
        if n_imputed:
            notes.decide(f"{n_imputed} numeric column(s) with missing values: median imputation "
                         "plus a missing-indicator column each")
        return self

    # ----------------------------------------------------------- transform
    def transform(self, X: pd.DataFrame, notes: Notes | None = None) -> np.ndarray:
        absent = [c for c in self.columns if c not in X.columns]
        if absent:
            raise PredictInputError(f"missing column(s) the model was trained on: {', '.join(absent)}")
        n = len(X)
        out = np.empty((n, self.n_features), dtype=np.float32)
        j = 0
        numbers = {c.name: _as_numbers(X[c.name], c.name, fitting=False) for c in self.numeric}
        for col in self.numeric:
            values = numbers[col.name]
            out[:, j] = (np.where(np.isnan(values), col.median, values) - col.mean) / col.std
            j += 1
        for col in self.numeric:
            if col.indicator:
                out[:, j] = np.isnan(numbers[col.name])
                j += 1
        codes = {c.name: self._codes(c, X[c.name], notes) for c in self.categorical}
        for col in self.categorical:
            if col.encoding == "onehot":
                block = out[:, j : j + col.width]
                block[:] = 0.0
                block[np.arange(n), codes[col.name]] = 1.0
                j += col.width
        for col in self.categorical:
            if col.encoding == "embedding":
                out[:, j] = codes[col.name]
                j += 1
        return out

    def _codes(self, col: CategoricalColumn, column: pd.Series, notes: Notes | None) -> np.ndarray:
        lookup = {c: i + 1 for i, c in enumerate(col.categories)}
        labels = _category_labels(column)
        codes = np.fromiter((lookup.get(v, 0) for v in labels), dtype=np.int64, count=len(labels))
        n_unknown = int((codes == 0).sum())
        if n_unknown:
            unseen = sorted({v for v, c in zip(labels, codes) if c == 0})[:5]
            (notes or Notes()).warn(
                f"column {col.name!r}: {n_unknown} value(s) never seen in training "
                f"(e.g. {', '.join(map(repr, unseen))}) mapped to the unknown slot"
            )
        return codes

    # ----------------------------------------------------------- describe
    @property
    def columns(self) -> list[str]:
        return [c.name for c in self.numeric] + [c.name for c in self.categorical]

    @property
    def n_dense(self) -> int:
        onehot = sum(c.width for c in self.categorical if c.encoding == "onehot")
        return len(self.numeric) + sum(c.indicator for c in self.numeric) + onehot

    @property
    def n_features(self) -> int:
        return self.n_dense + sum(c.encoding == "embedding" for c in self.categorical)

    def input_spec(self) -> dict[str, Any]:
        cards = [c.width for c in self.categorical if c.encoding == "embedding"]
        return {"n_features": self.n_features, "n_dense": self.n_dense, "cardinalities": cards}

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": [asdict(c) for c in self.numeric],
            "categorical": [asdict(c) for c in self.categorical],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        pre = cls()
        pre.numeric = [NumericColumn(**c) for c in d["numeric"]]
        pre.categorical = [CategoricalColumn(**c) for c in d["categorical"]]
        return pre


def _as_numbers(column: pd.Series, name: str, *, fitting: bool) -> np.ndarray | None:
    """The column as float64 with NaN for missing/inf, or None when it holds categories."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(np.isinf(values), np.nan, values) if not fitting else values
    parsed = pd.to_numeric(column, errors="coerce")
    present = column.notna().to_numpy()
    bad = present & parsed.isna().to_numpy()
    if fitting:
        share = 1.0 - bad.sum() / max(present.sum(), 1)
        if not bad.any():
            return parsed.to_numpy(dtype=np.float64, na_value=np.nan)
        if share < MOSTLY_NUMERIC:
            return None  # a categorical column
        raise DataFormatError(
            f"column {name!r} mixes numbers with other values ({_examples(column[bad])}); "
            "clean it or make it all text"
        )
    if bad.any():
        raise PredictInputError(f"column {name!r} should hold numbers but holds {_examples(column[bad])}")
    values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isinf(values), np.nan, values)


def _examples(values: pd.Series, limit: int = 3) -> str:
    shown = list(dict.fromkeys(map(str, values)))[:limit]
    return ", ".join(repr(v) for v in shown) + f" in {len(values)} row(s)"


def _fit_numeric(name: str, values: np.ndarray) -> NumericColumn:
    finite = np.isfinite(values)
    if not finite.any():
        raise DataFormatError(f"column {name!r} has no finite value in the training split")
    median = float(np.median(values[finite]))
    imputed = np.where(finite, values, median)
    std = float(imputed.std())
    return NumericColumn(name, median, float(imputed.mean()), std if std > 0 else 1.0, bool((~finite).any()))


def _category_labels(column: pd.Series) -> list[str]:
    return [MISSING if pd.isna(v) else str(v) for v in column.tolist()]


def _fit_categorical(name: str, column: pd.Series) -> CategoricalColumn:
    categories = sorted(set(_category_labels(column)))
    encoding = "onehot" if len(categories) <= ONEHOT_MAX_CATEGORIES else "embedding"
    return CategoricalColumn(name, categories, encoding)


class TargetEncoder:
    """Class names ↔ integer codes for classification; standardisation for regression."""

    def __init__(self, task: str) -> None:
        self.task = task
        self.classes: list[Any] = []
        self.mean, self.std = 0.0, 1.0

    def fit(self, y: pd.Series) -> TargetEncoder:
        if self.task == "classification":
            self.classes = sorted(_plain(v) for v in pd.unique(y))
        else:
            values = y.to_numpy(dtype=np.float64)
            self.mean, self.std = float(values.mean()), float(values.std()) or 1.0
        return self

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "classification" else 1

    def transform(self, y: pd.Series) -> np.ndarray:
        if self.task == "regression":
            values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=np.float64)
            if np.isnan(values).any():
                raise PredictInputError("the target holds missing or non-numeric values")
            return ((values - self.mean) / self.std).astype(np.float32)
        lookup = {c: i for i, c in enumerate(self.classes)}
        codes = [lookup.get(_plain(v), -1) for v in y.tolist()]
        if -1 in codes:
            unseen = sorted({str(v) for v, c in zip(y.tolist(), codes) if c == -1})[:5]
            raise PredictInputError(f"the target holds classes the model never saw: {', '.join(unseen)}")
        return np.asarray(codes, dtype=np.int64)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Codes → class labels, or standardised values → the target's units."""
        if self.task == "regression":
            return values.astype(np.float64) * self.std + self.mean
        return np.asarray(self.classes, dtype=object)[values]

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "classes": self.classes, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetEncoder:
        enc = cls(d["task"])
        enc.classes, enc.mean, enc.std = list(d["classes"]), d["mean"], d["std"]
        return enc


def _plain(value: Any) -> Any:
    """A JSON-safe Python scalar for a label (numpy ints → int, etc.)."""
    return value.item() if isinstance(value, np.generic) else value
