"""Preprocessing fitted on the training split only, saved with the model as plain JSON.

Output layout of `Preprocessor.transform` (one float32 matrix, so batches stay one tensor):
    [ standardised numbers | missing indicators | one-hot blocks | embedding indices ]
The first `n_dense` columns are dense features; the rest are category indices (slot 0 = unknown)
that the model embeds. `input_spec()` says where the boundary is.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

import deepfit.modalities.tabular.dates as date_columns
from deepfit.core.notes import Notes
from deepfit.core.words import noun_for, plural
from deepfit.data.numbers import (
    CLIP_STD,
    as_numbers,
    column_numbers,
    is_missing,
    mean_std,
    scale,
    statistic,
)
from deepfit.data.written import WRITTEN
from deepfit.errors import DataFormatError, PredictInputError, RunDirError

UNKNOWN = "<unknown>"
MISSING = "<missing>"
ONEHOT_MAX_CATEGORIES = 10  # more distinct values than this: an embedding instead
WHOLE_TEXT = re.compile(r"^([+-]?\d+)\.0*$")  # '101.0' names the category 101


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
        self.dates: list[date_columns.DateColumn] = []  # expanded into numeric parts (modalities/tabular/dates.py)
        # how the training file wrote each number column (data/written.py): new files read alike
        self.written: dict[str, str] = {}

    # ----------------------------------------------------------------- fit
    def fit(self, X: pd.DataFrame, notes: Notes | None = None) -> Preprocessor:
        notes = notes if notes is not None else Notes()
        self.numeric, self.categorical = [], []
        self.dates = date_columns.fit_dates(X, notes)
        self.written = dict(X.attrs.get(WRITTEN, {}))
        X = date_columns.expand_dates(X, self.dates)
        for name in X.columns:
            column = X[name]
            values = column_numbers(column, name)
            if values is None:
                self.categorical.append(_fit_categorical(name, column))
            elif not np.isfinite(values).any():
                notes.warn(f"column {name!r} has no finite value in the training split; left out")
            else:
                n_inf = int(np.isinf(values).sum())
                if n_inf:
                    notes.warn(f"column {name!r}: {plural(n_inf, 'infinite value')} treated as missing")
                self.numeric.append(_fit_numeric(name, values))
        if not self.columns:
            raise DataFormatError("no feature column has a usable value in the training split")
        for col in self.categorical:
            notes.decide(
                f"column {col.name!r}: {len(col.categories)} categories, {col.encoding} encoding"
            )
        date_columns.one_indicator(self.numeric, self.dates)
        n_imputed = sum(c.indicator for c in self.numeric)
        if n_imputed:
            notes.decide(f"{plural(n_imputed, 'numeric column')} with missing values: median imputation "
                         + ("plus a missing-indicator column" if n_imputed == 1
                            else "plus a missing-indicator column each"))
        return self

    # ----------------------------------------------------------- transform
    def transform(self, X: pd.DataFrame, notes: Notes | None = None) -> np.ndarray:
        absent = [c for c in self.columns if c not in X.columns]
        if absent:
            raise PredictInputError(f"missing {noun_for(len(absent), 'column')} the model was trained on: "
                                    f"{', '.join(map(repr, absent))}")
        X = date_columns.expand_dates(X, self.dates)
        n = len(X)
        out = np.empty((n, self.n_features), dtype=np.float32)
        j = 0
        numbers = {c.name: as_numbers(X[c.name], c.name) for c in self.numeric}
        for col in self.numeric:
            out[:, j] = _standardise(col, numbers[col.name], notes)
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
        """Each row's slot (0: unknown), matched by category_text, so that 101, 101.0 and '101'
        are one category whatever dtype pandas gave the column (a model saved before category_text
        wrote a float category as '101.0', which matches too). More than half of the rows
        unknown is a warning that shows unseen values beside known ones."""
        lookup: dict[str, int] = {}
        for i, c in enumerate(col.categories):
            lookup.setdefault(category_text(c), i + 1)
        labels = _category_labels(column)
        codes = np.fromiter((lookup.get(v, 0) for v in labels), dtype=np.int64, count=len(labels))
        n_unknown = int((codes == 0).sum())
        if n_unknown:
            unseen = ", ".join(map(repr, sorted({v for v, c in zip(labels, codes) if c == 0})[:5]))
            if 2 * n_unknown > len(labels):
                known = ", ".join(map(repr, col.categories[:5]))
                (notes or Notes()).warn(
                    f"column {col.name!r}: {n_unknown} of {len(labels)} rows hold values never seen "
                    f"in training (e.g. {unseen}; training had {known}): all mapped to the unknown "
                    "slot; is this column written as it was in the training data?")
            else:
                (notes or Notes()).warn(
                    f"column {col.name!r}: {plural(n_unknown, 'value')} never seen in training "
                    f"(e.g. {unseen}) mapped to the unknown slot")
        return codes

    # ----------------------------------------------------------- describe
    @property
    def columns(self) -> list[str]:
        numeric = date_columns.original_columns([c.name for c in self.numeric], self.dates)
        return numeric + [c.name for c in self.categorical]

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
            "dates": [asdict(c) for c in self.dates],
            "written": self.written,
        }

    def to_spec(self) -> dict[str, Any]:
        """Everything another language needs to turn raw rows into the network's input (the
        `preprocess` part of an export's preprocess.json, deploy/export.py): the raw columns in
        order, each date column's parts, each number's imputation, mean and std, each
        category's vocabulary, and the layout of the float32 matrix [N, n_features] this
        preprocessor's `transform` makes, block by block (start column, width)."""
        layout, j = [], 0
        for kind, cols, width in (
                ("standardised", [c.name for c in self.numeric], 1),
                ("missing_indicator", [c.name for c in self.numeric if c.indicator], 1),
                ("onehot", [c.name for c in self.categorical if c.encoding == "onehot"], None),
                ("embedding_index", [c.name for c in self.categorical if c.encoding == "embedding"], 1)):
            for name in cols:
                w = width or next(c.width for c in self.categorical if c.name == name)
                layout.append({"kind": kind, "column": name, "start": j, "width": w})
                j += w
        return {
            "input_layout": "[N, n_features] float32, one row per raw row",
            "n_features": self.n_features, "n_dense": self.n_dense,
            "columns": self.columns,  # the raw columns the model reads, in this order
            "missing": "an empty or blank field, NaN, None or NA; for numbers also ±inf",
            "numeric": [{"name": c.name, "impute": c.median, "mean": c.mean, "std": c.std,
                         "missing_indicator": c.indicator} for c in self.numeric],
            "clip": CLIP_STD,  # |z| of a standardised number at most this
            "numeric_rule": f"x missing → impute; z = (x - mean) / std, clipped to ±{CLIP_STD:g}; "
                            "missing_indicator column: 1.0 where x was missing, else 0.0",
            "categorical": [{"name": c.name, "encoding": c.encoding, "categories": c.categories}
                            for c in self.categorical],
            "categorical_rule": (
                f"the value's text: missing → {MISSING!r}; a whole-number float (101.0) → its "
                "integer ('101'); otherwise str(value) without surrounding spaces. Its slot is "
                "its position in categories + 1, or 0 (unknown) for a value not among them. "
                "onehot: width len(categories) + 1, 1.0 at the slot; embedding_index: the slot "
                "as a float"),
            "dates": [{"name": d.name, "format": d.format, "reference": d.reference,
                       "parts": d.part_names} for d in self.dates],
            "dates_rule": ("a date column (strptime format, ISO8601, or datetime64 values; "
                           "time zones converted to UTC) becomes number columns named "
                           "<column>.<part>: year, month, day, dayofweek (Monday 0), dayofyear, "
                           "elapsed_days (days since reference, fractional), hour, minute; "
                           "then treated as numeric columns above"),
            "written": self.written,  # columns whose file wrote numbers with decimal commas
            "layout": layout,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        """The preprocessor `to_dict` saved, each column checked (core/run_checks.py's
        from_record: RunDirError naming the column and key that are wrong)."""
        from deepfit.core.run_checks import from_record

        pre, where = cls(), "model.json's preprocessor"
        for key in ("numeric", "categorical"):
            if not isinstance(d.get(key), list):
                raise RunDirError(f"{where} lacks its list of {key} columns")
        pre.numeric = [from_record(NumericColumn, c, f"{where} numeric[{i}]") for i, c in enumerate(d["numeric"])]
        for i, c in enumerate(pre.numeric):
            if not c.std > 0:
                raise RunDirError(f"{where} numeric[{i}]'s 'std' is {c.std!r}: a scale must be above 0")
        pre.categorical = [from_record(CategoricalColumn, c, f"{where} categorical[{i}]")
                           for i, c in enumerate(d["categorical"])]
        for i, c in enumerate(pre.categorical):
            if c.encoding not in ("onehot", "embedding"):
                raise RunDirError(f"{where} categorical[{i}]'s 'encoding' is {c.encoding!r}, not "
                                  "'onehot' or 'embedding'")
        pre.dates = [from_record(date_columns.DateColumn, c, f"{where} dates[{i}]")
                     for i, c in enumerate(d.get("dates") or [])]
        written = d.get("written") or {}
        if not isinstance(written, dict):
            raise RunDirError(f"{where}'s 'written' is no JSON object")
        pre.written = dict(written)
        return pre


def _standardise(col: NumericColumn, values: np.ndarray, notes: Notes | None) -> np.ndarray:
    """(value - mean) / std, the missing imputed with the median, clipped to ±CLIP_STD."""
    z = scale(np.where(np.isnan(values), col.median, values), col.mean, col.std)
    n_far = int((np.abs(z) > CLIP_STD).sum())
    if n_far:
        (notes or Notes()).warn(
            f"column {col.name!r}: {plural(n_far, 'value')} more than {CLIP_STD:g} standard deviations "
            "from the training mean; clipped")
    return np.clip(z, -CLIP_STD, CLIP_STD)


def _fit_numeric(name: str, values: np.ndarray) -> NumericColumn:
    finite = np.isfinite(values)  # at least one: Preprocessor.fit leaves out columns with none
    median = statistic(np.median, values[finite])
    imputed = np.where(finite, values, median)
    mean, std = mean_std(imputed)
    return NumericColumn(name, median, mean, std, bool((~finite).any()))


def _category_labels(column: pd.Series) -> list[str]:
    return [category_text(v) for v in column.tolist()]


def category_text(value: Any) -> str:
    """The one text a category is known by at fit and at predict: MISSING for a missing value, a
    whole-number float as its integer (101.0 and '101.0' → '101', as 101 and '101' are), any
    other value as str() without surrounding spaces."""
    if is_missing(value):
        return MISSING
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    whole = WHOLE_TEXT.match(text)
    return whole.group(1) if whole else text


def _fit_categorical(name: str, column: pd.Series) -> CategoricalColumn:
    categories = sorted(set(_category_labels(column)))
    encoding = "onehot" if len(categories) <= ONEHOT_MAX_CATEGORIES else "embedding"
    return CategoricalColumn(name, categories, encoding)


