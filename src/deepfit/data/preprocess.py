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

from deepfit.core.notes import Notes
from deepfit.data import dates as date_columns
from deepfit.errors import DataFormatError, PredictInputError, TargetError

UNKNOWN = "<unknown>"
MISSING = "<missing>"
ONEHOT_MAX_CATEGORIES = 10  # more distinct values than this: an embedding instead
MOSTLY_NUMERIC = 0.9
# A standardised value beyond this many standard deviations is clipped: float32 keeps it finite
# and the network stays away from Inf/NaN. Targets that far out are refused instead.
CLIP_STD = 1e6
THOUSANDS = re.compile(r"^\s*[+-]?\d{1,3}(,\d{3})+(\.\d*)?\s*$")
WHOLE_TEXT = re.compile(r"^([+-]?\d+)\.0*$")  # '101.0' names the category 101
# DataFrame.attrs key: how a file wrote each number column, {column: "decimal_comma" |
# "decimal_point"} (data/written.py); the Preprocessor keeps it so new files read alike
WRITTEN = "deepfit_written"


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
        self.dates: list[date_columns.DateColumn] = []  # expanded into numeric parts (data/dates.py)
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
                    notes.warn(f"column {name!r}: {n_inf} infinite value(s) treated as missing")
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
            notes.decide(f"{n_imputed} numeric column(s) with missing values: median imputation "
                         "plus a missing-indicator column each")
        return self

    # ----------------------------------------------------------- transform
    def transform(self, X: pd.DataFrame, notes: Notes | None = None) -> np.ndarray:
        absent = [c for c in self.columns if c not in X.columns]
        if absent:
            raise PredictInputError("missing column(s) the model was trained on: "
                                    f"{', '.join(map(repr, absent))}")
        X = date_columns.expand_dates(X, self.dates)
        n = len(X)
        out = np.empty((n, self.n_features), dtype=np.float32)
        j = 0
        numbers = {c.name: _as_numbers(X[c.name], c.name) for c in self.numeric}
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
                    f"column {col.name!r}: {n_unknown} value(s) never seen in training "
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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        pre = cls()
        pre.numeric = [NumericColumn(**c) for c in d["numeric"]]
        pre.categorical = [CategoricalColumn(**c) for c in d["categorical"]]
        pre.dates = [date_columns.DateColumn(**c) for c in d.get("dates", [])]
        pre.written = dict(d.get("written", {}))
        return pre


def column_numbers(column: pd.Series, name: str) -> np.ndarray | None:
    """A training column as float64 (NaN where missing, inf kept), or None when it holds
    categories: a pandas categorical, or text that is mostly not numbers. A column of numbers
    with a few other values among them is a named error."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return None
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    values, bad = parse_numbers(column)
    if not bad.any():
        return values
    n_present = int((~np.isnan(values)).sum() + bad.sum())
    if 1.0 - bad.sum() / n_present < MOSTLY_NUMERIC:
        return None
    raise DataFormatError(
        f"column {name!r} mixes numbers with other values ({_examples(column[bad])}); "
        "clean it or make it all text"
    )


def parse_numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Text or objects as float64 (NaN where missing or not a number) and the mask of the
    values that are not numbers. Blank strings are missing; '1,234.5' is 1234.5."""
    column = pd.Series(column.to_numpy(dtype=object))
    blank = np.fromiter((isinstance(v, str) and not v.strip() for v in column),
                        dtype=bool, count=len(column))
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan,
                                                             copy=True)
    bad = column.notna().to_numpy() & ~blank & np.isnan(values)
    grouped = [i for i in np.flatnonzero(bad)
               if isinstance(column.iat[i], str) and THOUSANDS.match(column.iat[i])]
    for i in grouped:
        values[i] = float(column.iat[i].replace(",", ""))
    bad[grouped] = False
    return values, bad


def _as_numbers(column: pd.Series, name: str) -> np.ndarray:
    """A column of new rows as float64, NaN for missing or infinite values."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values, bad = parse_numbers(column)
        if bad.any():
            raise PredictInputError(
                f"column {name!r} should hold numbers but holds {_examples(column[bad])}")
    return np.where(np.isinf(values), np.nan, values)


def _standardise(col: NumericColumn, values: np.ndarray, notes: Notes | None) -> np.ndarray:
    """(value - mean) / std, the missing imputed with the median, clipped to ±CLIP_STD."""
    z = _scale(np.where(np.isnan(values), col.median, values), col.mean, col.std)
    n_far = int((np.abs(z) > CLIP_STD).sum())
    if n_far:
        (notes or Notes()).warn(
            f"column {col.name!r}: {n_far} value(s) more than {CLIP_STD:g} standard deviations "
            "from the training mean; clipped")
    return np.clip(z, -CLIP_STD, CLIP_STD)


def _scale(values: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(values - mean) / std, and values / std - mean / std where the difference overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = (values - mean) / std
        far = ~np.isfinite(z)
        if far.any():
            z[far] = values[far] / std - mean / std
    return z


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation (1 for a constant, whose mean is then exact at any scale)."""
    if values.min() == values.max():
        return float(values.flat[0]), 1.0  # any shape: multi-step targets are [N, H]
    mean, std = _statistic(np.mean, values), _statistic(np.std, values)
    return mean, std if std > 0 else 1.0


def _statistic(stat, values: np.ndarray) -> float:
    """np.mean, np.median or np.std of finite values, without overflow near the float64 limit
    (the values are scaled down first where the plain sum or square overflows)."""
    with np.errstate(over="ignore", invalid="ignore"):
        result = float(stat(values))
    if np.isfinite(result):
        return result
    scale = float(np.abs(values).max())
    return float(stat(values / scale)) * scale


def _examples(values: pd.Series, limit: int = 3) -> str:
    shown = list(dict.fromkeys(map(str, values)))[:limit]
    return ", ".join(repr(v) for v in shown) + f" in {len(values)} row(s)"


def _fit_numeric(name: str, values: np.ndarray) -> NumericColumn:
    finite = np.isfinite(values)  # at least one: Preprocessor.fit leaves out columns with none
    median = _statistic(np.median, values[finite])
    imputed = np.where(finite, values, median)
    mean, std = _mean_std(imputed)
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


def is_missing(value: Any) -> bool:
    """None, NaN, NA, NaT or a blank string."""
    if isinstance(value, str):
        return not value.strip()
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def _fit_categorical(name: str, column: pd.Series) -> CategoricalColumn:
    categories = sorted(set(_category_labels(column)))
    encoding = "onehot" if len(categories) <= ONEHOT_MAX_CATEGORIES else "embedding"
    return CategoricalColumn(name, categories, encoding)


class TargetEncoder:
    """Class names ↔ integer codes for classification; standardisation for regression. A
    regression target may be a DataFrame of H columns (multi-step forecasts, data/sequences.py):
    one mean and standard deviation for all, and H model outputs."""

    def __init__(self, task: str) -> None:
        self.task = task
        self.classes: list[Any] = []
        self.mean, self.std = 0.0, 1.0
        self.n_targets = 1  # values per row (regression)

    def fit(self, y: pd.Series) -> TargetEncoder:
        if self.task == "classification":
            self.classes = sorted(_plain(v) for v in pd.unique(y))
        else:
            self.mean, self.std = _mean_std(y.to_numpy(dtype=np.float64))
            self.n_targets = y.shape[1] if y.ndim == 2 else 1
        return self

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "classification" else self.n_targets

    def transform(self, y: pd.Series) -> np.ndarray:
        if self.task == "regression":
            numbers = y.apply(pd.to_numeric, errors="coerce") if y.ndim == 2 else pd.to_numeric(y, errors="coerce")
            values = numbers.to_numpy(dtype=np.float64)
            if np.isnan(values).any():
                raise PredictInputError("the target holds missing or non-numeric values")
            z = _scale(values, self.mean, self.std)
            far = ~(np.abs(z) <= CLIP_STD)
            if far.any():
                raise TargetError(
                    f"the target holds {values[far][0]:.6g}, more than {CLIP_STD:g} standard "
                    f"deviations from the training values ({self.mean:.6g} ± {self.std:.6g}); "
                    "remove the outlier or rescale the target")
            return z.astype(np.float32)
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
        return {"task": self.task, "classes": self.classes, "mean": self.mean, "std": self.std,
                "n_targets": self.n_targets}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetEncoder:
        enc = cls(d["task"])
        enc.classes, enc.mean, enc.std = list(d["classes"]), d["mean"], d["std"]
        enc.n_targets = int(d.get("n_targets", 1))
        return enc


def _plain(value: Any) -> Any:
    """A JSON-safe Python scalar for a label (numpy ints → int, etc.)."""
    return value.item() if isinstance(value, np.generic) else value
