"""The tabular reader: a CSV or Parquet file, an .npz of X [N, F] and y, a DataFrame, arrays
with y=, or one of scikit-learn's bundled sets, as a Dataset of a feature DataFrame and its
target. Training features are cleaned here (empty columns dropped, each column settled over all
its rows as numbers, categories or dates); held-out rows are left for the fitted preprocessing.
It is the last reader asked (priority 90): what no other reader takes is read as a table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deepfit.config import UNSUPERVISED
from deepfit.core.notes import Notes
from deepfit.core.words import plural
from deepfit.data.builtin import BUILTIN_NAMES, load_builtin
from deepfit.data.common import array_frame, as_array, named_columns, names
from deepfit.data.dataset import Dataset, source_name
from deepfit.data.kinds import MIN_SIGNAL_COLUMNS, signal_like, signal_note
from deepfit.data.numbers import column_numbers, is_missing
from deepfit.data.readers import ReadRequest
from deepfit.data.tables import TABLE_SUFFIXES, read_npz, read_table
from deepfit.data.targets import labelled_target
from deepfit.errors import DataFormatError, SourceNotFoundError, TargetError
from deepfit.modalities.tabular.dates import DATE_FORMATS, whole_column_formats

MODALITY = "tabular"


def read_tabular(request: ReadRequest) -> Dataset | None:
    """The source as a table (the module docstring): the catch-all, it never passes (a model
    of another modality then names the mismatch). Raises DataFormatError, TargetError,
    SourceNotFoundError or UnknownDatasetError."""
    source, notes = request.source, request.notes
    if request.task in UNSUPERVISED and request.target is None and request.y is None \
            and not _bundled(source):  # learnt without labels: every column is a feature
        frame = named_columns(_unlabelled_frame(source, notes, request.written), "the data")
        y_series, target = pd.Series(np.zeros(len(frame), dtype=np.int64), name="unlabelled"), None
        if not request.held_out:
            notes.decide("no target: the anomaly scores are not evaluated against labels")
    else:
        frame, y_series, target = _features_and_target(source, request.target, request.y, notes,
                                                       request.written)
    if len(frame) == 0:
        raise DataFormatError(f"the data from {source_name(source)} hold no rows")
    if frame.shape[1] == 0:
        raise DataFormatError("the data hold no feature columns besides the target")
    if not request.held_out:  # held-out rows go through the fitted preprocessing as they are
        frame = _clean_features(frame, notes)
        if request.modality is None and (signal := table_signal(frame)) is not None:
            notes.decide(signal_note(signal))  # no model named: the sequence models suggested
    frame = frame.reset_index(drop=True)
    if target is None:
        return Dataset(frame, y_series, source_name(source), None, request.task)
    y_series, task = labelled_target(y_series, target, request.task, notes, request.held_out)
    return Dataset(frame, y_series, source_name(source), target, task)


def _bundled(source) -> bool:
    return isinstance(source, str) and source in BUILTIN_NAMES


def _unlabelled_frame(source, notes: Notes, written) -> pd.DataFrame:
    """The features of a source read without a target: a DataFrame, an array [N, F], a table file."""
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, np.ndarray):
        return array_frame(as_array(source, "X"))
    path = Path(source)
    if not path.exists():
        raise SourceNotFoundError(f"no such file: {source}")
    return read_table(path, notes, written)


def table_signal(frame: pd.DataFrame) -> dict[str, float] | None:
    """data/kinds.py's signal_like evidence for a table of numeric columns only, else None."""
    if frame.shape[1] < MIN_SIGNAL_COLUMNS or not all(
            pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in frame.dtypes):
        return None
    return signal_like(frame.to_numpy(dtype=np.float64, na_value=np.nan))


def _features_and_target(source, target, y, notes,
                         written=None) -> tuple[pd.DataFrame, pd.Series, str]:
    if y is not None:  # arrays or a DataFrame of features with a separate target
        X = source if isinstance(source, pd.DataFrame) else array_frame(as_array(source, "X"))
        y_array = as_array(y, "y")
        if y_array.ndim != 1:
            raise DataFormatError(f"y must be one-dimensional, got shape {y_array.shape}")
        y_series = pd.Series(y_array, name="target")
        if len(X) != len(y_series):
            raise DataFormatError(f"X has {len(X)} rows but y has {len(y_series)}")
        return named_columns(X, "X"), y_series, target or "target"
    if isinstance(source, pd.DataFrame):
        return _split_target(source, target, "the DataFrame")
    if isinstance(source, np.ndarray):
        raise TargetError("an array of features needs its target: pass y=")
    if not isinstance(source, (str, Path)):
        raise DataFormatError(f"cannot read a source of type {type(source).__name__}")
    path = Path(source)
    if path.suffix.lower() == ".npz":
        return (*read_npz(path), target or "target")
    if path.suffix.lower() in TABLE_SUFFIXES or path.exists():
        return _split_target(read_table(path, notes, written), target, path.name)
    if str(source) in BUILTIN_NAMES:
        X, y_series = load_builtin(str(source))
        if target not in (None, "target"):
            raise TargetError(f"the bundled dataset {source!r} has one target, 'target'")
        return X, y_series, "target"
    if path.suffix or "/" in str(source):
        raise SourceNotFoundError(f"no such file: {source}")
    return (*load_builtin(str(source)), "target")  # raises UnknownDatasetError


def _split_target(frame: pd.DataFrame, target: str | None, where: str):
    frame = named_columns(frame, where)
    if target is None:
        raise TargetError(f"name the target column with --target; {where} has: {names(frame.columns)}")
    if target not in frame.columns:
        hint = ""
        if frame.shape[1] == 1:
            hint = "; it was read as a single column: is its delimiter one of , ; tab | ?"
        raise TargetError(
            f"the target {target!r} is not a column of {where}; columns: {names(frame.columns)}{hint}")
    return frame.drop(columns=[target]), frame[target], target


def _clean_features(frame: pd.DataFrame, notes: Notes) -> pd.DataFrame:
    """Training features: empty columns dropped (with a warning), and each column settled, over
    all its rows, as numbers or as categories, so that every split reads it the same way."""
    empty = [c for c in frame.columns if _all_missing(frame[c])]
    if empty:
        notes.warn(f"dropped {plural(len(empty), 'column')} with no values at all: {names(empty)}")
        frame = frame.drop(columns=empty)
        if frame.shape[1] == 0:
            raise DataFormatError("every feature column is empty")
    # dates, found once over each whole column: settling leaves them as they are, and a text
    # date's format is carried to the splits, so each is read as its whole column decides
    dates = whole_column_formats(frame)
    settled = pd.DataFrame({name: _settle_column(frame[name], name, notes, str(name) in dates)
                            for name in frame.columns}, index=frame.index)
    settled.attrs.update(frame.attrs)  # how the file wrote its numbers (data/written.py)
    settled.attrs[DATE_FORMATS] = dates
    return settled


def _all_missing(column: pd.Series) -> bool:
    present = column[column.notna()]
    return len(present) == 0 or (present.dtype.kind in "OSU" and all(map(is_missing, present)))


def _settle_column(column: pd.Series, name: str, notes: Notes, dates: bool) -> pd.Series:
    """Numbers stay numbers and text holding numbers becomes numbers (noted); other text becomes
    a pandas categorical; numbers with a few other values among them are a named error; `dates`
    (the column is dates, modalities/tabular/dates.py) stay as they are."""
    if column.dtype.kind == "c":
        raise DataFormatError(f"column {name!r} holds complex numbers; split them into real columns")
    if column.dtype.kind == "m":
        raise DataFormatError(f"column {name!r} holds durations ({column.dtype}); "
                              "turn them into numbers first")
    if dates:
        return column  # dates: the preprocessor expands them into numbers (modalities/tabular/dates.py)
    if (pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column)
            or isinstance(column.dtype, pd.CategoricalDtype)):
        return column
    values = column_numbers(column, name)  # raises on numbers mixed with other values
    if values is None:
        return column.astype("category")
    if pd.api.types.infer_dtype(column, skipna=True) == "string":
        grouped = " (with thousands separators)" if column.astype(str).str.contains(",").any() else ""
        notes.decide(f"column {name!r} holds numbers written as text{grouped}; read as numbers")
    return pd.Series(values, index=column.index, name=name)


