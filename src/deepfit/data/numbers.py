"""Numbers in columns of any kind: text holding numbers ('1,234.5'), statistics that do not
overflow near the float64 limit, and the clipping bound every standardisation shares. Every
modality's reader and preprocessor imports these; they import nothing of deepfit's but errors."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from deepfit.core.words import plural
from deepfit.errors import DataFormatError, PredictInputError

MOSTLY_NUMERIC = 0.9


# A standardised value beyond this many standard deviations is clipped: float32 keeps it finite
# and the network stays away from Inf/NaN. Targets that far out are refused instead.
CLIP_STD = 1e6


THOUSANDS = re.compile(r"^\s*[+-]?\d{1,3}(,\d{3})+(\.\d*)?\s*$")


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
        f"column {name!r} mixes numbers with other values ({examples(column[bad])}); "
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


def as_numbers(column: pd.Series, name: str) -> np.ndarray:
    """A column of new rows as float64, NaN for missing or infinite values."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values, bad = parse_numbers(column)
        if bad.any():
            raise PredictInputError(
                f"column {name!r} should hold numbers but holds {examples(column[bad])}")
    return np.where(np.isinf(values), np.nan, values)


def mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation (1 for a constant, whose mean is then exact at any scale)."""
    if values.min() == values.max():
        return float(values.flat[0]), 1.0  # any shape: multi-step targets are [N, H]
    mean, std = statistic(np.mean, values), statistic(np.std, values)
    return mean, std if std > 0 else 1.0


def statistic(stat, values: np.ndarray) -> float:
    """np.mean, np.median or np.std of finite values, without overflow near the float64 limit
    (the values are scaled down first where the plain sum or square overflows)."""
    with np.errstate(over="ignore", invalid="ignore"):
        result = float(stat(values))
    if np.isfinite(result):
        return result
    scale = float(np.abs(values).max())
    return float(stat(values / scale)) * scale


def examples(values: pd.Series, limit: int = 3) -> str:
    shown = list(dict.fromkeys(map(str, values)))[:limit]
    return ", ".join(repr(v) for v in shown) + f" in {plural(len(values), 'row')}"


def is_missing(value: Any) -> bool:
    """None, NaN, NA, NaT or a blank string."""
    if isinstance(value, str):
        return not value.strip()
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def scale(values: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(values - mean) / std, and values / std - mean / std where the difference overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = (values - mean) / std
        far = ~np.isfinite(z)
        if far.any():
            z[far] = values[far] / std - mean / std
    return z
