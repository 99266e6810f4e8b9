"""Date and date-time columns as numeric features, the same way from every format.

A column is read as dates when it is a datetime64 column (Parquet, a DataFrame; tz-aware too) or
text whose every present value parses under ONE format, decided from the whole column (ISO 8601
first, then the formats pandas guesses from its first values, then common day/month orders). A
column of plain numbers (20240101 included) is never dates. Tz-aware values are taken in UTC.

Each date column becomes numeric parts (PARTS, and TIME_PARTS when some value has a time of day)
named "<column>.<part>"; the tabular Preprocessor (modalities/tabular/preprocess.py) fits them as numbers on the
training split (median imputation, standardisation) and keeps one missing indicator per date
column, on its elapsed days. The format and the reference date are saved with the model, so text
at predict time is parsed as the training text was.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from deepfit.core.notes import Notes
from deepfit.core.words import noun_for, plural
from deepfit.errors import DataFormatError, PredictInputError

PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "elapsed_days")
TIME_PARTS = ("hour", "minute")
PART_WORDS = {"dayofweek": "day of week", "dayofyear": "day of year", "elapsed_days": "elapsed days"}
DATE_PARTS = "year, month, day, day of week, day of year, elapsed days"  # PARTS, in words
DATETIME64 = "datetime64"  # the "format" of a column that came as datetimes, not text
DATE_FORMATS = "deepfit_date_formats"  # key of DataFrame.attrs: {column: (format, ambiguous)}
SAMPLE = 1_000  # distinct values a candidate format is tried on before the whole column
GUESS_FROM = 20  # first distinct values whose guessed formats are candidates
COMMON_FORMATS = tuple(
    f"{day}{time}" for day in ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%m-%d-%Y",
                               "%Y/%m/%d", "%d/%m/%y", "%m/%d/%y")
    for time in ("", " %H:%M", " %H:%M:%S"))


@dataclass
class DateColumn:
    """A date column: how its text is read (`format`: a strptime format, "ISO8601", or
    DATETIME64), the reference of its elapsed days (ISO text, the training minimum), its parts."""

    name: str
    format: str
    reference: str
    parts: list[str] = field(default_factory=list)

    @property
    def part_names(self) -> list[str]:
        return [f"{self.name}.{p}" for p in self.parts]


def date_format(column: pd.Series) -> tuple[str, bool] | None:
    """How `column` reads as dates: (format, ambiguous), or None when it is not dates. ambiguous:
    day-first and month-first both read every value (the month-first reading, pandas' default,
    is returned). Never dates: numbers, booleans, a value that is a plain number, no digits."""
    if isinstance(column.dtype, pd.CategoricalDtype):  # a Parquet dictionary of date texts, say
        column = column.astype(object)
    if column.dtype.kind == "M":
        return DATETIME64, False
    if column.dtype.kind in "biufcm":
        return None
    kind = pd.api.types.infer_dtype(column, skipna=True)
    if kind in ("datetime", "datetime64", "date"):
        return DATETIME64, False
    if kind != "string":
        return None
    values = pd.Series(column.dropna().astype(str).str.strip().unique())
    values = values[values != ""]
    if not len(values) or not values.str.contains(r"\d").all():
        return None
    if pd.to_numeric(values, errors="coerce").notna().any():
        return None  # plain numbers (a year, 20240101) are numbers, even among dates
    sample = values.iloc[:SAMPLE]
    for fmt in _candidates(values):
        if _reads_all(sample, fmt) and _reads_all(values, fmt):
            swapped = _swap_day_month(fmt)
            return fmt, swapped is not None and _reads_all(values, swapped)
    return None


def _candidates(values: pd.Series) -> list[str]:
    """ISO 8601, the formats pandas guesses from the first values (month first, then day
    first), then COMMON_FORMATS; only formats with a year and a month."""
    guessed = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Parsing dates in … format when dayfirst"
        for dayfirst in (False, True):
            guessed += [guess_datetime_format(v, dayfirst=dayfirst) for v in values.iloc[:GUESS_FROM]]
    formats = [f for f in dict.fromkeys(guessed + list(COMMON_FORMATS)) if f]
    return ["ISO8601"] + [f for f in formats if ("%Y" in f or "%y" in f)
                          and any(m in f for m in ("%m", "%b", "%B"))]


def _swap_day_month(fmt: str) -> str | None:
    if "%d" not in fmt or "%m" not in fmt or fmt.index("%Y" if "%Y" in fmt else "%y") == 0:
        return None  # year first (ISO's order) is never read day first
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def _reads_all(values: pd.Series, fmt: str) -> bool:
    try:
        return bool(_parse(values, fmt).notna().all())
    except (ValueError, TypeError, OverflowError):
        return False


def _parse(text: pd.Series, fmt: str) -> pd.Series:
    """Text → naive datetimes in UTC (NaT where a value does not fit `fmt`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    return parsed.dt.tz_localize(None)


def as_dates(column: pd.Series, fmt: str, name: str) -> pd.Series:
    """A column as naive UTC datetimes, NaT where missing; text read with `fmt` (text given to a
    model fitted on datetimes: its own format, by date_format). Raises PredictInputError naming
    the values that do not read as dates."""
    column = column.reset_index(drop=True)
    if column.dtype.kind == "M":
        return column.dt.tz_convert("UTC").dt.tz_localize(None) if column.dt.tz else column
    kind = pd.api.types.infer_dtype(column, skipna=True)
    if kind in ("datetime", "datetime64", "date", "empty"):
        return pd.to_datetime(column, utc=True).dt.tz_localize(None)
    text = column.astype("string").str.strip()
    present = (text.fillna("") != "").to_numpy(dtype=bool)
    if fmt == DATETIME64:
        found = date_format(column)
        fmt = found[0] if found else "ISO8601"
    dates = _parse(text.astype(object).where(present, None), fmt)
    bad = present & dates.isna().to_numpy()
    if bad.any():
        shown = ", ".join(repr(v) for v in list(dict.fromkeys(text[bad].astype(str)))[:3])
        raise PredictInputError(f"column {name!r} should hold dates in the format the training "
                                f"data were read in ({fmt}) but holds {shown} in "
                                f"{plural(int(bad.sum()), 'row')}; if this file writes them otherwise "
                                "(day and month swapped, say), write them as the training file did")
    return dates


def whole_column_formats(X: pd.DataFrame) -> dict[str, tuple[str, bool]]:
    """Each date column of a whole table with its date_format (DATETIME64 for datetimes). The
    loader keeps it in X.attrs[DATE_FORMATS] (pandas carries attrs through row selections), so
    that the training split is read as its whole column decides: 01/02/2024 among training rows
    whose days are all <= 12 is read day first when a validation row holds 25/12/2023."""
    return {str(name): how for name in X.columns if (how := date_format(X[name])) is not None}


def fit_dates(X: pd.DataFrame, notes: Notes) -> list[DateColumn]:
    """The date columns of training features, each with its format, reference and parts
    (noted); a text column's format is the whole column's when the loader left it in
    X.attrs[DATE_FORMATS], else the training rows'. Raises DataFormatError when a part's name
    is already a column."""
    found, decided = [], X.attrs.get(DATE_FORMATS, {})
    for name in X.columns:
        how = date_format(X[name])
        if how is not None and how[0] != DATETIME64 and str(name) in decided:
            how = tuple(decided[str(name)])
        if how is None:
            continue
        dates = as_dates(X[name], how[0], name)
        if dates.isna().all():
            continue  # no date at all: left to the usual rules (an empty column)
        times = dates.dropna()
        has_time = bool(((times - times.dt.normalize()) != pd.Timedelta(0)).any())
        col = DateColumn(str(name), how[0], times.min().isoformat(),
                         list(PARTS + (TIME_PARTS if has_time else ())))
        taken = [p for p in col.part_names if p in X.columns]
        if taken:
            raise DataFormatError(f"column {name!r} holds dates, whose features would be named "
                                  f"like the existing {noun_for(len(taken), 'column')} {', '.join(map(repr, taken))}")
        found.append(col)
        notes.decide(_describe(col, how[1], X[name]))
    return found


def _describe(col: DateColumn, ambiguous: bool, column: pd.Series) -> str:
    how = "holds datetimes" if col.format == DATETIME64 else f"read as dates (format {col.format})"
    parts = ", ".join(PART_WORDS.get(p, p) for p in col.parts)
    text = f"column {col.name!r} {how}: expanded into {parts} (since {col.reference[:10]})"
    if ambiguous:
        text += f"; every value reads day first or month first alike: read as {col.format}"
    if column.dtype.kind == "M" and column.dt.tz is not None:
        text += f"; time zone {column.dt.tz} converted to UTC"
    return text


def expand_dates(X: pd.DataFrame, columns: list[DateColumn]) -> pd.DataFrame:
    """X with each date column replaced, in place, by its numeric parts (float64, NaN where the
    date is missing). Raises PredictInputError on values that do not read as dates."""
    if not columns:
        return X
    by_name = {c.name: c for c in columns}
    out = {}
    for name in X.columns:
        col = by_name.get(str(name))
        if col is None:
            out[name] = X[name].reset_index(drop=True)
            continue
        dates = as_dates(X[name], col.format, col.name)
        for part, values in zip(col.part_names, _parts(dates, col)):
            out[part] = values
    return pd.DataFrame(out)


def _parts(dates: pd.Series, col: DateColumn) -> list[pd.Series]:
    """The values of each of col.parts, as float64."""
    reference = pd.Timestamp(col.reference)
    values = {
        "year": dates.dt.year, "month": dates.dt.month, "day": dates.dt.day,
        "dayofweek": dates.dt.day_of_week, "dayofyear": dates.dt.day_of_year,
        "elapsed_days": (dates - reference) / pd.Timedelta(days=1),
        "hour": dates.dt.hour, "minute": dates.dt.minute,
    }
    return [values[p].astype(np.float64) for p in col.parts]


def one_indicator(numeric: list, columns: list[DateColumn]) -> None:
    """A missing date shows in every part: keep only the elapsed days' indicator (NumericColumn
    objects of the Preprocessor, changed in place)."""
    others = {n for c in columns for n in c.part_names if not n.endswith(".elapsed_days")}
    for num in numeric:
        if num.name in others:
            num.indicator = False


def original_columns(names: list[str], columns: list[DateColumn]) -> list[str]:
    """Feature names with each date's parts replaced by the date column's name (once)."""
    owner = {p: c.name for c in columns for p in c.part_names}
    return list(dict.fromkeys(owner.get(n, n) for n in names))


def is_date_column(column: pd.Series) -> bool:
    """Whether the Preprocessor reads `column` as dates (for the audit and other checks)."""
    return date_format(column) is not None
