"""Read a source (bundled name, CSV, Parquet, .npz, DataFrame or arrays) into a `Dataset`.

The task is inferred from the target here, and every choice made is written to `notes`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfit.data.builtin import BUILTIN_NAMES, load_builtin
from deepfit.errors import DataFormatError, SourceNotFoundError, TargetError
from deepfit.notes import Notes

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
MAX_CLASSES_FOR_INTEGER_TARGET = 20


@dataclass
class Dataset:
    """Features (a DataFrame with string column names), the raw target, and what they are."""

    X: pd.DataFrame
    y: pd.Series
    name: str
    target: str
    task: str
    modality: str = "tabular"

    def __len__(self) -> int:
        return len(self.X)


def source_name(source: Any) -> str:
    if isinstance(source, (str, Path)):
        path = Path(source)
        return path.stem if path.suffix else str(source)
    return "arrays" if isinstance(source, np.ndarray) else "dataframe"


def load_source(
    source: Any,
    *,
    target: str | None = None,
    task: str | None = None,
    y: Any = None,
    notes: Notes | None = None,
    held_out: bool = False,
) -> Dataset:
    """Load features and target from any supported source and infer the task. Held-out data
    (a test file, data to evaluate on) may hold a single class; training data may not."""
    notes = notes if notes is not None else Notes()
    frame, y_series, target = _features_and_target(source, target, y, notes)
    frame = _clean_features(frame, notes)
    y_series = y_series.reset_index(drop=True)
    frame = frame.reset_index(drop=True)
    task = _resolve_task(y_series, target, task, notes)
    _check_target(y_series, target, task, held_out)
    return Dataset(frame, y_series, source_name(source), target, task)


def _features_and_target(source, target, y, notes) -> tuple[pd.DataFrame, pd.Series, str]:
    if y is not None:  # arrays or a DataFrame of features with a separate target
        X = source if isinstance(source, pd.DataFrame) else _array_frame(np.asarray(source))
        y_array = np.asarray(y)
        if y_array.ndim != 1:
            raise DataFormatError(f"y must be one-dimensional, got shape {y_array.shape}")
        y_series = pd.Series(y_array, name="target")
        if len(X) != len(y_series):
            raise DataFormatError(f"X has {len(X)} rows but y has {len(y_series)}")
        X = X.copy()
        X.columns = [str(c) for c in X.columns]
        return X, y_series, target or "target"
    if isinstance(source, pd.DataFrame):
        return _split_target(source, target, "the DataFrame")
    if isinstance(source, np.ndarray):
        raise TargetError("an array of features needs its target: pass y=")
    if not isinstance(source, (str, Path)):
        raise DataFormatError(f"cannot read a source of type {type(source).__name__}")
    path = Path(source)
    if path.suffix.lower() == ".npz":
        return (*_read_npz(path), target or "target")
    if path.suffix.lower() in TABLE_SUFFIXES or path.exists():
        return _split_target(read_table(path, notes), target, path.name)
    if str(source) in BUILTIN_NAMES:
        X, y_series = load_builtin(str(source))
        if target not in (None, "target"):
            raise TargetError(f"the bundled dataset {source!r} has one target, 'target'")
        return X, y_series, "target"
    if path.suffix or "/" in str(source):
        raise SourceNotFoundError(f"no such file: {source}")
    return (*load_builtin(str(source)), "target")  # raises UnknownDatasetError


def _split_target(frame: pd.DataFrame, target: str | None, where: str):
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    if target is None:
        raise TargetError(f"name the target column with --target; {where} has: {_names(frame.columns)}")
    if target not in frame.columns:
        raise TargetError(f"the target {target!r} is not a column of {where}; columns: {_names(frame.columns)}")
    return frame.drop(columns=[target]), frame[target], target


def _names(columns, limit: int = 12) -> str:
    cols = [str(c) for c in columns]
    more = f", … ({len(cols)} in all)" if len(cols) > limit else ""
    return ", ".join(cols[:limit]) + more


def read_table(path: Path | str, notes: Notes | None = None) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame, with its delimiter and encoding detected."""
    notes = notes if notes is not None else Notes()
    path = Path(path)
    if not path.exists():
        raise SourceNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise DataFormatError(f"{path} is a directory, not a table")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise DataFormatError(f"{path} is not a readable Parquet file ({exc})") from None
    else:
        frame = _read_csv(path, notes)
    if frame.shape[1] == 0 or len(frame) == 0:
        raise DataFormatError(f"{path} holds no data rows")
    return frame


def _read_csv(path: Path, notes: Notes) -> pd.DataFrame:
    raw = path.read_bytes()
    if not raw.strip():
        raise DataFormatError(f"{path} is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        notes.warn(f"{path.name} is not UTF-8; read it as Latin-1")
    first = text.splitlines()[0]
    delimiter = ","
    if "," not in first:
        try:
            delimiter = csv.Sniffer().sniff(first, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
        if delimiter != ",":
            notes.decide(f"{path.name}: detected the delimiter {delimiter!r}")
    try:
        return pd.read_csv(io.StringIO(text), sep=delimiter)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFormatError(f"{path} is not a readable CSV file ({str(exc).strip()})") from None


def read_npz_features(path: Path) -> pd.DataFrame:
    """The features of an .npz file (its `y`, if any, is not needed)."""
    return _array_frame(_npz_arrays(path, need=("X",))["X"])


def _read_npz(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    arrays = _npz_arrays(path, need=("X", "y"))
    X, y = arrays["X"], arrays["y"]
    if len(X) != len(y):
        raise DataFormatError(f"{path}: X has {len(X)} rows but y has {len(y)}")
    if y.ndim != 1:
        raise DataFormatError(f"{path}: y must be one-dimensional, got shape {y.shape}")
    return _array_frame(X), pd.Series(y, name="target")


def _npz_arrays(path: Path, need: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not path.exists():
        raise SourceNotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except ValueError as exc:  # object arrays need pickle, which is never allowed
        raise DataFormatError(f"{path} holds arrays that need pickle to read; refused ({exc})") from None
    except Exception as exc:
        raise DataFormatError(f"{path} is not a readable .npz file ({exc})") from None
    missing = [k for k in need if k not in arrays]
    if missing:
        raise DataFormatError(f"{path} has no array named {' or '.join(missing)}; it has {_names(arrays)}")
    return arrays


def _array_frame(X: np.ndarray) -> pd.DataFrame:
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise DataFormatError(
            f"X has shape {X.shape}; tabular models take [rows, features]. "
            "Image and sequence arrays need an image or sequence model"
        )
    if X.dtype.kind not in "biuf":
        raise DataFormatError(f"X must be numeric, got dtype {X.dtype}")
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])


def _clean_features(frame: pd.DataFrame, notes: Notes) -> pd.DataFrame:
    if frame.shape[1] == 0:
        raise DataFormatError("the data hold no feature columns besides the target")
    empty = [c for c in frame.columns if frame[c].isna().all()]
    if empty:
        notes.warn(f"dropped {len(empty)} column(s) with no values at all: {_names(empty)}")
        frame = frame.drop(columns=empty)
        if frame.shape[1] == 0:
            raise DataFormatError("every feature column is empty")
    return frame


def _resolve_task(y: pd.Series, target: str, task: str | None, notes: Notes) -> str:
    if task is not None:
        notes.decide(f"task: {task} (as asked)")
        return task
    non_null = y.dropna()
    n_unique = non_null.nunique()
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        inferred, why = "classification", "the target holds labels"
    elif pd.api.types.is_integer_dtype(y) and n_unique <= MAX_CLASSES_FOR_INTEGER_TARGET:
        inferred, why = "classification", f"the target holds {n_unique} integer values"
    else:
        inferred, why = "regression", f"the target holds {n_unique} distinct numbers"
    notes.decide(f"task inferred: {inferred} ({why} in {target!r}; override with --task)")
    return inferred


def _check_target(y: pd.Series, target: str, task: str, held_out: bool) -> None:
    n_missing = int(y.isna().sum())
    if n_missing:
        raise TargetError(f"the target {target!r} has {n_missing} missing value(s); drop or fill those rows")
    if task == "classification":
        if y.nunique() < 2 and not held_out:
            raise TargetError(f"the target {target!r} has a single class ({y.iloc[0]!r}); nothing to learn")
    else:
        values = pd.to_numeric(y, errors="coerce")
        if values.isna().any():
            bad = y[values.isna()].iloc[0]
            raise TargetError(f"regression needs a numeric target; {target!r} holds {bad!r}")
        if not np.isfinite(values.to_numpy(dtype=float)).all():
            raise TargetError(f"the target {target!r} holds infinite values")
