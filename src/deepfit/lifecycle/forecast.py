"""Forecasts from a time series with a run trained on one (`deepfit train SERIES.csv --window W
--horizon H --target COL`, modalities/sequence/preprocess.py).

The run saves, in model.json under "series", the channel columns in their training order, the
target, W, H and the time column found (if any); the per-channel normalisation is the saved
SequencePreprocessor's. `forecast(predictor, series)` rebuilds the windows exactly as training
built them (the channels read by name, so the columns may come in any order and extra columns
are ignored; gaps filled forward, then backward) and returns one row per step forecast:

    default          the H steps after the series' last W rows: the future;
    all_windows      the rolling backtest: the forecast of every window of W rows in the file
                     (windows 0 … n-W; the last ones reach past the file's end).

Columns, in order:
    forecast_start   (all_windows) the 0-based data row the window's forecast starts at (i + W)
    step             1 … H steps ahead
    row              the data row forecast (forecast_start + step - 1); n or more: after the file
    <time column>    when the series has one: its value at `row`, after the file extended by the
                     series' interval when that interval is regular (else empty)
    <target>_forecast
    <target>_actual  (all_windows) the target at `row`; empty after the file
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfit.core.notes import Notes
from deepfit.core.words import noun_for, plural, verb_for
from deepfit.data.common import named_columns, names
from deepfit.data.numbers import as_numbers
from deepfit.data.tables import read_table
from deepfit.errors import PredictInputError
from deepfit.modalities.sequence.reader import time_values


def forecast(predictor: Any, series: Any, *, all_windows: bool = False,
             notes: Notes | None = None) -> pd.DataFrame:
    """The forecasts of `predictor` (a deepfit Predictor trained on a time series) from `series`
    (a DataFrame, or a CSV/Parquet path), as laid out in the module docstring."""
    info = predictor.series
    if info is None:
        raise PredictInputError("this run was not trained on a time series (deepfit train "
                                "SERIES.csv --window W): it predicts from rows, not from a series")
    notes = notes if notes is not None else Notes()
    frame = series if isinstance(series, pd.DataFrame) else read_table(Path(series), notes,
                                                                       info.get("written"))
    frame = named_columns(frame, "the series").reset_index(drop=True)
    values = channel_values(frame, info, notes)  # [n, C]
    n, W, H = len(values), int(info["window"]), int(info["horizon"])
    starts = np.arange(n - W + 1) if all_windows else np.array([n - W])
    X = window_array(values, W)[starts]  # [k, W, C], as training built them
    predicted = np.asarray(predictor.predict(X), dtype=np.float64).reshape(len(starts), H)
    step = np.tile(np.arange(1, H + 1), len(starts))
    rows = np.repeat(starts + W, H) + step - 1
    out = {"forecast_start": np.repeat(starts + W, H)} if all_windows else {}
    out |= {"step": step, "row": rows}
    time_column = info.get("time_column")
    if time_column is not None and time_column in frame.columns:
        out[time_column] = _times_at(frame[time_column], rows, notes)
    target = info["target"]
    out[f"{target}_forecast"] = predicted.reshape(-1)
    if all_windows:
        actual = np.full(len(rows), np.nan)
        inside = rows < n
        actual[inside] = values[rows[inside], info["channels"].index(target)]
        out[f"{target}_actual"] = actual
    return pd.DataFrame(out)


def channel_values(frame: pd.DataFrame, info: dict[str, Any], notes: Notes) -> np.ndarray:
    """The training channels of a series as float64 [rows, C], in their training order; gaps
    (missing or infinite values) filled as training filled them."""
    channels, window = list(info["channels"]), int(info["window"])
    missing = [c for c in channels if c not in frame.columns]
    if missing:
        raise PredictInputError(
            f"the series lacks {plural(len(missing), 'column')} the model was trained on: "
            f"{names(missing)} (it reads {names(channels)}); columns found: {names(frame.columns)}")
    if len(frame) < window:
        raise PredictInputError(f"the series has {plural(len(frame), 'row')}; the model reads windows of "
                                f"{window} rows, so it needs at least {window}")
    table = pd.DataFrame({c: as_numbers(frame[c], c) for c in channels})  # named error on text
    empty = [c for c in channels if table[c].isna().all()]
    if empty:
        raise PredictInputError(f"{noun_for(len(empty), 'column')} {names(empty)} of the series {verb_for(len(empty), 'hold')} no numbers")
    n_missing = int(table.isna().sum().sum())
    if n_missing:
        notes.warn(f"{plural(n_missing, 'missing or infinite value')} in the series filled with the "
                   "previous row's value (the first rows with the next one's), as in training")
        table = table.ffill().bfill()
    return table.to_numpy(dtype=np.float64)


def window_array(values: np.ndarray, window: int) -> np.ndarray:
    """Every window of `window` consecutive rows: float32 [rows - window + 1, window, C]."""
    X = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # [k, C, W]
    return np.ascontiguousarray(X.transpose(0, 2, 1), dtype=np.float32)


def _times_at(column: pd.Series, rows: np.ndarray, notes: Notes) -> pd.Series:
    """The time column's value at each row; past the file's end, the last time plus whole
    intervals when the series' interval is regular (else missing)."""
    times = time_values(column)
    n = len(column)
    if times is None:
        return pd.Series([None] * len(rows), dtype=object)
    out = times.iloc[np.minimum(rows, n - 1)].reset_index(drop=True)
    after = rows >= n
    if not after.any():
        return out
    steps = times.diff().iloc[1:]
    regular = n >= 2 and not steps.isna().any() and steps.nunique() == 1
    if not regular or not steps.iloc[0] > steps.iloc[0] * 0:  # one interval, and a forward one
        notes.warn(f"the time column {column.name!r} has no regular interval: the times after "
                   "the series' end are left empty")
        out[after] = None
        return out
    out[after] = times.iloc[-1] + steps.iloc[0] * (rows[after] - (n - 1))
    return out
