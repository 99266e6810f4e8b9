"""Sequence data: arrays of sequences, and time series cut into forecasting windows.

The sequence reader (priority 30, after images and before tables). Sources (`load_sequences`, by
the rule of `wants_sequences`):
  - an .npz (or arrays with y=) whose X is [N, T, C], or [N, T] read as one channel;
  - a CSV/Parquet time series with `window` W (and `horizon` H, default 1): window i holds rows
    i … i+W-1 of every numeric column (the target among them) and its target is the target
    column's next H values, rows i+W … i+W+H-1. Rows are taken in the file's order.
  - a CSV/Parquet file or DataFrame with a target column and no `window`, when sequences are
    asked for (--modality sequence, a sequence model): each row's other columns, numbers in
    the file's order, are one sequence of one channel (`row_sequences`);
Which sources are sequences (`wants_sequences`), in order:
  1. `modality` given (--modality, or the only modality of the model named by --model):
     sequences exactly when it is "sequence";
  2. `window` given: a time series;
  3. otherwise an array X with 3 dimensions is [N, T, C], unless it looks like images
     (data/kinds.py: image_like, which the image reader took first); with 2 it stays a table.
  So an [N, T] array is read as sequences with --modality sequence or a sequence model.
Targets: a 1-D y (classes or values) is a pandas Series, as for tables. A multi-step target
([N, H] in an .npz, or a horizon above 1) is a pandas DataFrame of H columns, regression only:
`data.y.iloc[rows]` still selects rows, TargetEncoder standardises all H columns with one mean and
standard deviation (they are the same quantity at H steps) and gives the model H outputs, and the
regression metrics run over all N × H values. The train path needs no branch for it.
Splits: sequences of an .npz are independent samples, split like table rows (shuffled, seeded,
stratified). Windows of one time series are not: `Dataset.split_gap` = W + H - 1 makes the run split
them by time (data/split.py's `split_by_time`): training windows first, then validation, then test, with W+H-1
windows left out at each boundary, so that no two windows of different splits share a row.
Forecasting from a new series: `Dataset.series` records the channel columns in their order, the
target, W, H and the time column (`find_time_column`); the run saves it in model.json and
runs/forecast.py rebuilds the windows from a CSV with it.
Normalisation: modalities/sequence/preprocess.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfit.core.notes import Notes
from deepfit.core.words import plural
from deepfit.data.common import as_array, named_columns, names, npz_arrays, npz_shape
from deepfit.data.dataset import Dataset, source_name
from deepfit.data.kinds import image_like, npz_image_like
from deepfit.data.numbers import column_numbers
from deepfit.data.readers import ReadRequest
from deepfit.data.tables import TABLE_SUFFIXES, read_table
from deepfit.data.targets import labelled_target
from deepfit.data.written import WRITTEN
from deepfit.errors import (
    DataFormatError,
    SettingsError,
    TargetError,
)

MODALITY = "sequence"


def read_sequences(request: ReadRequest) -> Dataset | None:
    """The source as sequences when `wants_sequences` says so (the module docstring), else None."""
    if not wants_sequences(request.source, request.y, request.window, request.modality):
        return None
    return load_sequences(request.source, target=request.target, task=request.task, y=request.y,
                          window=request.window, horizon=request.horizon, notes=request.notes,
                          held_out=request.held_out)


# ------------------------------------------------------------------------------ which sources
def wants_sequences(source: Any, y: Any, window: int | None, modality: str | None) -> bool:
    """Whether `source` is read as sequences (the rule of the module docstring)."""
    if window is not None and modality not in (None, MODALITY):
        raise SettingsError(f"--window cuts a time series into sequences, but {modality} data "
                            "were asked for (by --modality or --model)")
    if modality is not None:
        return modality == MODALITY
    if window is not None:
        return True
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".npz":
        return len(npz_shape(Path(source), "X")) == 3 and npz_image_like(Path(source)) is None
    return (y is not None and isinstance(source, np.ndarray) and source.ndim == 3
            and image_like(source) is None)


# ------------------------------------------------------------------------------------- loading
def load_sequences(source: Any, *, target: str | None = None, task: str | None = None, y: Any = None,
                   window: int | None = None, horizon: int | None = None, notes: Notes | None = None,
                   held_out: bool = False) -> Dataset:
    notes = notes if notes is not None else Notes()
    name = source_name(source)
    if window is not None:
        frame = source if isinstance(source, pd.DataFrame) else read_table(Path(source), notes)
        return _windows(frame, name, target, task, window, horizon or 1, notes, held_out)
    steps: list[str] = []  # a table's step columns, by name (row_sequences)
    if horizon is not None:
        raise SettingsError("--horizon goes with --window (a time series); an .npz's y gives its own")
    if y is not None:
        X, y_array, where = as_array(source, "X"), as_array(y, "y"), ""
    elif isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".npz":
        arrays = npz_arrays(Path(source), need=("X", "y"))
        X, y_array, where = arrays["X"], arrays["y"], f"{source}: "
    elif isinstance(source, pd.DataFrame) or (isinstance(source, (str, Path))
                                              and Path(source).suffix.lower() in TABLE_SUFFIXES):
        X, y_array, where, steps = row_sequences(source, target, notes, held_out)
    else:
        raise DataFormatError("sequence data come as an .npz of X [N, T, C] and y, as arrays with "
                              "y=, as a table whose rows are sequences (with --target), or as a "
                              "time series with --window")
    if not isinstance(X, pd.DataFrame):  # held-out rows of a table stay named (the model selects)
        X = sequence_array(X, where)
    if y_array.ndim not in (1, 2):
        raise DataFormatError(f"{where}y has shape {y_array.shape}; it is [N] or, for multi-step "
                              "forecasts, [N, H]")
    if len(X) != len(y_array):
        raise DataFormatError(f"{where}X has {len(X)} sequences but y has {len(y_array)}")
    y_data, target, task = _target(y_array, target or "target", task, notes, held_out)
    if not held_out:
        notes.decide(f"sequences: {X.shape[0]} of {X.shape[1]} steps × {plural(X.shape[2], 'channel')}")
    return Dataset(X, y_data, name, target, task, modality=MODALITY,
                   reading={"steps": steps} if steps else None)


def row_sequences(source: Any, target: str | None, notes: Notes,
                  held_out: bool) -> tuple[Any, np.ndarray, str, list[str]]:
    """A table (CSV/Parquet file or DataFrame) whose rows are sequences: (X, the target's values,
    where, the step columns' names). Training: the columns other than the target, all numbers,
    in the file's order, are the T steps of one channel (X [N, T]); held out, X is those columns
    as a DataFrame, which the fitted preprocessor reads by the training's names (any order,
    other columns ignored). Raises TargetError without the target, DataFormatError for a
    column that is not numbers."""
    frame = source if isinstance(source, pd.DataFrame) else read_table(Path(source), notes)
    frame = named_columns(frame, source_name(source))
    if target is None or target not in frame.columns:
        raise TargetError(f"a table read as sequences (one per row) needs its target column "
                          f"(--target); {source_name(source)} has: {names(frame.columns)}")
    steps = frame.drop(columns=[target])
    if held_out:
        return steps, frame[target].to_numpy(), f"{source_name(source)}: ", []
    values = {}
    for col in steps.columns:
        numbers = column_numbers(steps[col], col)
        if numbers is None:
            raise DataFormatError(f"column {col!r} is not numbers: a row read as a sequence holds "
                                  "one number per step (drop the column, or train it as a table)")
        values[col] = np.asarray(numbers, dtype=np.float64)
    first, last = steps.columns[0], steps.columns[-1]
    notes.decide(f"each row's {steps.shape[1]} columns ({first!r} … {last!r}, in the file's "
                 "order) read as one sequence of that many steps; --window W reads the file "
                 "as a time series instead")
    X = np.column_stack(list(values.values())) if values else np.empty((len(frame), 0))
    return X, frame[target].to_numpy(), f"{source_name(source)}: ", [str(c) for c in steps.columns]


def sequence_array(X: Any, where: str = "") -> np.ndarray:
    """X as float32 [N, T, C]; [N, T] becomes one channel."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise DataFormatError(f"{where}X must be numeric, got dtype {X.dtype}")
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3 or X.shape[1] < 1 or X.shape[2] < 1:
        raise DataFormatError(f"{where}X has shape {X.shape}; sequences are [N, T, C] or [N, T]")
    if len(X) == 0:
        raise DataFormatError(f"{where}X holds no sequences")
    return X.astype(np.float32, copy=False)


def _target(y: np.ndarray, target: str, task: str | None, notes: Notes, held_out: bool) -> tuple[pd.Series | pd.DataFrame, str, str]:
    if y.ndim == 1:
        series, task = labelled_target(pd.Series(y, name=target), target, task, notes, held_out)
        return series, target, task
    if task == "classification":
        raise SettingsError(f"a target of {y.shape[1]} values per sequence is a multi-step "
                            "forecast: regression, not classification")
    frame = multi_step_frame(y, target)
    notes.decide(f"task: regression of {y.shape[1]} values per sequence (y is [N, {y.shape[1]}])")
    return frame, target, "regression"


def multi_step_frame(y: np.ndarray, target: str) -> pd.DataFrame:
    """[N, H] targets as a DataFrame with columns target+1 … target+H, numeric and finite."""
    if y.dtype.kind not in "biuf":
        raise TargetError(f"a multi-step target must be numeric, not {y.dtype}")
    values = y.astype(np.float64)
    if not np.isfinite(values).all():
        raise TargetError(f"the target {target!r} holds missing or infinite values")
    return pd.DataFrame(values, columns=[f"{target}+{k}" for k in range(1, y.shape[1] + 1)])


def _windows(frame: pd.DataFrame, name: str, target: str | None, task: str | None, window: int,
             horizon: int, notes: Notes, held_out: bool) -> Dataset:
    """Sliding windows of a time series: X [n, W, C] and the target's next H values."""
    if window < 1 or horizon < 1:
        raise SettingsError(f"window and horizon must be at least 1, not {window} and {horizon}")
    if task == "classification":
        raise SettingsError("forecasting windows of a time series are regression, not classification")
    frame = named_columns(frame, name)
    if target is None or target not in frame.columns:
        raise TargetError(f"name the series to forecast with --target; columns: "
                          f"{names(frame.columns)}")
    values, channels = _numeric_columns(frame, target, notes)
    n = len(values) - window - horizon + 1
    if n < 1:
        raise DataFormatError(f"{len(values)} rows are too few for windows of {window} steps and "
                              f"a horizon of {horizon}")
    X = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)[:n]  # [n, C, W]
    X = np.ascontiguousarray(X.transpose(0, 2, 1), dtype=np.float32)  # [n, W, C]
    series = values[:, channels.index(target)]
    y = np.lib.stride_tricks.sliding_window_view(series[window:], horizon)[:n]  # [n, H]
    y_data = pd.Series(y[:, 0], name=target) if horizon == 1 else multi_step_frame(y, target)
    time_column, times = find_time_column(frame, target, channels)
    series = {"channels": channels, "target": target, "window": window, "horizon": horizon,
              "time_column": time_column,  # and how the file wrote its numbers (data/written.py)
              "written": dict(frame.attrs.get(WRITTEN, {}))}
    if not held_out:
        notes.decide(f"time series: {n} windows of {window} rows × {plural(len(channels), 'channel')} "
                     f"({names(channels)}); each forecasts {target!r} {plural(horizon, 'step')} "
                     "ahead; rows taken in the file's order")
        notes.decide("task: regression (forecasting)")
    return Dataset(X, y_data, name, target, "regression", modality=MODALITY,
                           split_gap=window + horizon - 1, series=series, times=times)


TIME_NAMES = ("time", "date", "datetime", "timestamp", "ds", "period")


def find_time_column(frame: pd.DataFrame, target: str,
                     channels: list[str]) -> tuple[str | None, pd.Series | None]:
    """The column that says when each row was observed, and its values (`time_values`): the
    first (other than the target) named like one of TIME_NAMES, else the first non-channel
    column whose every value reads as a date; in both cases more than half its values distinct.
    (None, None) when there is none."""
    named = [c for c in frame.columns if str(c).strip().lower() in TIME_NAMES and str(c) != target]
    others = [c for c in frame.columns if str(c) not in channels and c not in named]
    for column in named + others:
        values = time_values(frame[column])
        # a time axis is mostly distinct values; an hour-of-day or weekday column repeats them
        if values is not None and values.nunique() > 0.5 * values.notna().sum():
            return str(column), values
    return None, None


def time_values(column: pd.Series) -> pd.Series | None:
    """A time column as numbers or datetimes (None when some present value is neither)."""
    column = column.reset_index(drop=True)
    if pd.api.types.is_bool_dtype(column):
        return None
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return column
    present = column.notna() & (column.astype(str).str.strip() != "")
    if not present.any():
        return None
    numbers = pd.to_numeric(column.where(present), errors="coerce")
    if numbers[present].notna().all():
        return numbers
    if not column[present].astype(str).str.contains(r"\d").all():
        return None  # a date holds digits: month or day names alone are categories
    # one format for the whole column, vectorised: ISO 8601, else the format of the first value
    # (no value-by-value guessing: it reads 03/10 as 10 March in one row and 3 October in another)
    for how in ("ISO8601", None):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
                dates = pd.to_datetime(column.where(present), errors="coerce", format=how)
        except (ValueError, TypeError, OverflowError):
            continue
        if dates[present].notna().all():
            return dates
    return None


def _numeric_columns(frame: pd.DataFrame, target: str, notes: Notes) -> tuple[np.ndarray, list[str]]:
    """The numeric columns as float64 [rows, C], gaps filled forward (then backward)."""
    kept, left_out = {}, []
    for column in frame.columns:
        try:
            values = column_numbers(frame[column], column)
        except DataFormatError:
            values = None
        if values is None:
            left_out.append(column)
        else:
            kept[column] = np.where(np.isfinite(values), values, np.nan)
    if target not in kept:
        raise TargetError(f"the series to forecast, {target!r}, must hold numbers")
    if left_out:
        notes.decide(f"left out {plural(len(left_out), 'non-numeric column')}: {names(left_out)}")
    table = pd.DataFrame(kept)
    empty = [c for c in table.columns if table[c].isna().all()]
    if target in empty:
        raise TargetError(f"the target {target!r} holds no numbers")
    if empty:
        notes.warn(f"left out {plural(len(empty), 'column')} with no values: {names(empty)}")
        table = table.drop(columns=empty)
    n_missing = int(table.isna().sum().sum())
    if n_missing:
        notes.warn(f"{plural(n_missing, 'missing or infinite value')} filled with the previous row's value "
                   "(the first rows with the next one's)")
        table = table.ffill().bfill()
    return table.to_numpy(dtype=np.float64), [str(c) for c in table.columns]


# ------------------------------------------------------------------------------ split by time


# ------------------------------------------------------------------------------ preprocessing
