"""Read a source (bundled name, CSV, Parquet, .npz, DataFrame or arrays) into a `Dataset`.

The task is inferred from the target here, and every choice made is written to `notes`.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfit.core.notes import Notes
from deepfit.data.builtin import BUILTIN_NAMES, load_builtin
from deepfit.data.dates import DATE_FORMATS, whole_column_formats
from deepfit.data.images import held_out_images, load_images
from deepfit.data.labels import class_labels, whole_numbers
from deepfit.data.preprocess import WRITTEN, column_numbers, is_missing
from deepfit.data.torchvision_sets import load_named, named_set
from deepfit.data.written import read_csv_text
from deepfit.errors import DataFormatError, SourceNotFoundError, TargetError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
DELIMITERS = (",", ";", "\t", "|")  # the first wins a tie
SNIFF_LINES, SNIFF_CHARS = 50, 1 << 16
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
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
    # Windows of one time series (data/sequences.py): split by time, leaving this many windows
    # out at each boundary. None: rows are independent and split shuffled.
    split_gap: int | None = None
    # the held-out set that came with the source (torchvision's): the test split (api._prepare)
    test: Dataset | None = None
    # A time series' windows (data/sequences.py): what forecasting from a new series needs (the
    # channel columns in order, target, window, horizon, time column), saved with the model.
    series: dict | None = None
    times: pd.Series | None = None  # … and its time column, one value per row (the audit's order check)
    # A folder of image files: those skipped as unreadable, each "name (why)"; None: not a folder
    skipped_files: list[str] | None = None
    # … and how its files were read (data/image_files.py: read_image_folder); its own splits
    # (a train/ val/ test/ folder) are reading["splits"], used by data/split.py's fixed_splits
    reading: dict | None = None

    def __len__(self) -> int:
        return len(self.X)


def written_numbers(data: Dataset) -> dict[str, str]:
    """How the file of a loaded table wrote each number column (data/written.py), to read a
    held-out file of the same data alike; empty for other data."""
    return dict(data.X.attrs.get(WRITTEN, {})) if isinstance(data.X, pd.DataFrame) else {}


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
    window: int | None = None,
    horizon: int | None = None,
    modality: str | None = None,
    image_size: int | None = None,
    data_root: str | None = None,
    download: bool = False,
    loader: str = "auto",
    cache_limit_mb: float | None = None,
    written: dict[str, str] | None = None,
) -> Dataset:
    """Load features and target from any supported source and infer the task. Held-out data
    (a test file, data to evaluate on) may hold a single class; training data may not.
    Images (folders, 4-D arrays, 3-D ones and digits when `modality` is image: the rule is in
    data/images.py) are read first; sequences (`window`, `modality`, 3-D arrays: see
    data/sequences.py) have their own reader; torchvision's named sets (mnist, fashion-mnist,
    cifar10) are read from `data_root` (data/torchvision_sets.py). `loader` and `cache_limit_mb`:
    whether a folder of images is decoded into memory or streamed (data/image_files.py).
    `written`: how a model's training file wrote its numbers, for a held-out CSV (data/written.py)."""
    notes = notes if notes is not None else Notes()
    if (spec := named_set(source)) is not None and y is None:
        if target not in (None, "target"):
            raise TargetError(f"{spec.name} has one target, 'target' (its classes)")
        return load_named(spec, root=data_root, download=download, held_out=held_out,
                          modality=modality, image_size=image_size, task=task, notes=notes)
    from deepfit.data import sequences  # it builds on this module

    images = load_images(source, y, modality=modality, image_size=image_size, notes=notes,
                         loader=loader, cache_limit_mb=cache_limit_mb)
    if images is not None:
        X, y_series, name, skipped, reading = images
        if held_out and reading and reading.get("splits"):  # a train/ val/ test/ folder: its test/
            X, y_series, reading = held_out_images(X, y_series, reading, source, notes)
        target = target or "target"
        y_series = _clean_target(y_series.reset_index(drop=True), target)
        task = _resolve_task(y_series, target, task, notes)
        y_series = class_labels(y_series, task, notes)
        _check_target(y_series, target, task, held_out)
        return Dataset(X, y_series, name, target, task, modality="image", skipped_files=skipped,
                       reading=reading)
    if sequences.wants_sequences(source, y, window, modality):
        return sequences.load_sequences(source, target=target, task=task, y=y, window=window,
                                        horizon=horizon, notes=notes, held_out=held_out)
    frame, y_series, target = _features_and_target(source, target, y, notes, written)
    if len(frame) == 0:
        raise DataFormatError(f"the data from {source_name(source)} hold no rows")
    if frame.shape[1] == 0:
        raise DataFormatError("the data hold no feature columns besides the target")
    if not held_out:  # held-out rows go through the fitted preprocessing as they are
        frame = _clean_features(frame, notes)
    y_series = _clean_target(y_series.reset_index(drop=True), target)
    frame = frame.reset_index(drop=True)
    task = _resolve_task(y_series, target, task, notes)
    y_series = class_labels(y_series, task, notes)
    _check_target(y_series, target, task, held_out)
    return Dataset(frame, y_series, source_name(source), target, task)


def _features_and_target(source, target, y, notes,
                         written=None) -> tuple[pd.DataFrame, pd.Series, str]:
    if y is not None:  # arrays or a DataFrame of features with a separate target
        X = source if isinstance(source, pd.DataFrame) else _array_frame(_as_array(source, "X"))
        y_array = _as_array(y, "y")
        if y_array.ndim != 1:
            raise DataFormatError(f"y must be one-dimensional, got shape {y_array.shape}")
        y_series = pd.Series(y_array, name="target")
        if len(X) != len(y_series):
            raise DataFormatError(f"X has {len(X)} rows but y has {len(y_series)}")
        return _named_columns(X, "X"), y_series, target or "target"
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
        return _split_target(read_table(path, notes, written), target, path.name)
    if str(source) in BUILTIN_NAMES:
        X, y_series = load_builtin(str(source))
        if target not in (None, "target"):
            raise TargetError(f"the bundled dataset {source!r} has one target, 'target'")
        return X, y_series, "target"
    if path.suffix or "/" in str(source):
        raise SourceNotFoundError(f"no such file: {source}")
    return (*load_builtin(str(source)), "target")  # raises UnknownDatasetError


def _as_array(values: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(values)
    except (ValueError, TypeError) as exc:  # ragged nested lists, say
        raise DataFormatError(f"{name} cannot be read as an array ({_one_line(exc)})") from None


def _named_columns(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """A copy with string column names, which must be unique."""
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    twice = frame.columns[frame.columns.duplicated()].unique()
    if len(twice):
        raise DataFormatError(f"{where} has more than one column named {_names(twice)}")
    return frame


def _split_target(frame: pd.DataFrame, target: str | None, where: str):
    frame = _named_columns(frame, where)
    if target is None:
        raise TargetError(f"name the target column with --target; {where} has: {_names(frame.columns)}")
    if target not in frame.columns:
        hint = ""
        if frame.shape[1] == 1:
            hint = "; it was read as a single column: is its delimiter one of , ; tab | ?"
        raise TargetError(
            f"the target {target!r} is not a column of {where}; columns: {_names(frame.columns)}{hint}")
    return frame.drop(columns=[target]), frame[target], target


def _names(columns, limit: int = 12) -> str:
    """Column names for a message, each quoted so that a stray space shows: 'a', ' b'."""
    cols = [repr(str(c)) for c in columns]
    more = f", … ({len(cols)} in all)" if len(cols) > limit else ""
    return ", ".join(cols[:limit]) + more


def read_table(path: Path | str, notes: Notes | None = None,
               written: dict[str, str] | None = None) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame, with its delimiter and encoding detected; numbers
    written with a decimal comma read as numbers and spaces around names and text values
    stripped (data/written.py), each decision noted. `written`: how a model's training file
    wrote each number column (its preprocessor's record), so a new file reads the same way."""
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
            raise DataFormatError(f"{path} is not a readable Parquet file ({_one_line(exc)})") from None
    else:
        frame = _read_csv(path, notes, written)
    if frame.shape[1] == 0 or len(frame) == 0:
        raise DataFormatError(f"{path} holds no data rows")
    return frame


def _read_csv(path: Path, notes: Notes, written: dict[str, str] | None = None) -> pd.DataFrame:
    text = _decode(path, notes)
    if not text.strip():
        raise DataFormatError(f"{path} is empty")
    if "\x00" in text:
        raise DataFormatError(f"{path} holds NUL bytes: it is binary, or text in an encoding "
                              "without a byte-order mark; save it as UTF-8")
    delimiter = _detect_delimiter(text)
    if delimiter != ",":
        notes.decide(f"{path.name}: detected the delimiter {delimiter!r}")
    try:
        return read_csv_text(text, delimiter, path.name, notes, written)
    except (ValueError, csv.Error) as exc:  # pandas' ParserError and EmptyDataError among them
        raise DataFormatError(f"{path} is not a readable CSV file ({_one_line(exc)})") from None


def _decode(path: Path, notes: Notes) -> str:
    """The file's text: UTF-16/32 by their byte-order mark, UTF-8 (with or without one), and
    otherwise Windows-1252 or Latin-1, with a warning."""
    raw = path.read_bytes()
    for bom, codec in BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(codec)
            except UnicodeDecodeError as exc:
                raise DataFormatError(f"{path} starts as {codec.upper()} but is not ({exc.reason} "
                                      f"at byte {exc.start})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = f"byte {exc.start}"
    for codec, name in (("cp1252", "Windows-1252"), ("latin-1", "Latin-1")):
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        notes.warn(f"{path.name} is not UTF-8 ({where}); read it as {name}")
        return text
    raise AssertionError("Latin-1 decodes any bytes")


def _detect_delimiter(text: str) -> str:
    """The delimiter that cuts the first lines into the same number (above one) of fields,
    the most fields winning; ',' when none does."""
    lines = text[:SNIFF_CHARS].splitlines()
    if len(text) > SNIFF_CHARS and len(lines) > 1:
        lines = lines[:-1]  # it may be cut short
    sample = "\n".join(lines[:SNIFF_LINES])
    best, best_width = ",", 1
    for delimiter in DELIMITERS:
        try:
            widths = {len(row) for row in csv.reader(io.StringIO(sample), delimiter=delimiter) if row}
        except csv.Error:
            continue
        if len(widths) == 1 and (width := widths.pop()) > best_width:
            best, best_width = delimiter, width
    return best


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_npz_array(path: Path, key: str = "X") -> np.ndarray:
    """One array of an .npz as it is (the X of sequences or images)."""
    return _npz_arrays(Path(path), need=(key,))[key]


def read_npz_features(path: Path) -> pd.DataFrame:
    """The features of an .npz file (its `y`, if any, is not needed)."""
    return _array_frame(_npz_arrays(path, need=("X",))["X"])


def _read_npz(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    arrays = _npz_arrays(path, need=("X", "y"))
    X, y = arrays["X"], arrays["y"]
    if y.ndim != 1:
        raise DataFormatError(f"{path}: y must be one-dimensional, got shape {y.shape}")
    X = _array_frame(X, where=f"{path}: ")
    if len(X) != len(y):
        raise DataFormatError(f"{path}: X has {len(X)} rows but y has {len(y)}")
    return X, pd.Series(y, name="target")


def _npz_arrays(path: Path, need: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not path.exists():
        raise SourceNotFoundError(f"no such file: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataFormatError(f"{path} is a single .npy array, not an .npz archive of X and y")
        with loaded as archive:
            arrays = {k: archive[k] for k in archive.files}
    except DataFormatError:
        raise
    except ValueError as exc:  # object arrays need pickle, which is never allowed
        if "pickle" not in str(exc):
            raise DataFormatError(f"{path} is not a readable .npz file ({_one_line(exc)})") from None
        raise DataFormatError(f"{path} holds arrays that need pickle to read (object dtype); "
                              "refused, nothing was unpickled") from None
    except Exception as exc:
        raise DataFormatError(f"{path} is not a readable .npz file ({_one_line(exc)})") from None
    missing = [k for k in need if k not in arrays]
    if missing:
        raise DataFormatError(f"{path} has no array named {' or '.join(missing)}; it has {_names(arrays)}")
    return arrays


def _array_frame(X: np.ndarray, where: str = "") -> pd.DataFrame:
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise DataFormatError(
            f"{where}X has shape {X.shape}; tabular models take [rows, features]. "
            "Image and sequence arrays need an image or sequence model"
        )
    if X.dtype.kind not in "biuf":
        raise DataFormatError(f"{where}X must be numeric, got dtype {X.dtype}")
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])


def _clean_features(frame: pd.DataFrame, notes: Notes) -> pd.DataFrame:
    """Training features: empty columns dropped (with a warning), and each column settled, over
    all its rows, as numbers or as categories, so that every split reads it the same way."""
    empty = [c for c in frame.columns if _all_missing(frame[c])]
    if empty:
        notes.warn(f"dropped {len(empty)} column(s) with no values at all: {_names(empty)}")
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
    (the column is dates, data/dates.py) stay as they are."""
    if column.dtype.kind == "c":
        raise DataFormatError(f"column {name!r} holds complex numbers; split them into real columns")
    if column.dtype.kind == "m":
        raise DataFormatError(f"column {name!r} holds durations ({column.dtype}); "
                              "turn them into numbers first")
    if dates:
        return column  # dates: the preprocessor expands them into numbers (data/dates.py)
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


def _clean_target(y: pd.Series, target: str) -> pd.Series:
    """Labels of one kind: numbers, booleans or text (bytes decoded); anything else is named."""
    if isinstance(y.dtype, pd.CategoricalDtype) or y.dtype.kind == "S":
        y = y.astype(object)
    if y.dtype.kind in "biuf" or pd.api.types.is_bool_dtype(y) or pd.api.types.is_string_dtype(y):
        return y
    if y.dtype.kind != "O":
        raise TargetError(f"the target {target!r} holds {y.dtype} values; "
                          "labels must be numbers, booleans or text")
    kind = pd.api.types.infer_dtype(y, skipna=True)
    if kind == "bytes":
        return y.map(_text, na_action="ignore")
    if kind in ("integer", "floating", "mixed-integer-float", "decimal"):
        numbers = pd.to_numeric(y)
        return numbers.astype(np.float64) if numbers.dtype.kind == "O" else numbers
    if kind in ("string", "boolean", "empty"):
        return y
    kinds = sorted({type(v).__name__ for v in y if not is_missing(v)})
    raise TargetError(f"the target {target!r} mixes kinds of values ({', '.join(kinds)}); "
                      "make its labels all text or all numbers")


def _text(value: Any) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _resolve_task(y: pd.Series, target: str, task: str | None, notes: Notes) -> str:
    """The task asked for, or the one the target's values mean: labels (text, booleans) and a
    few whole numbers (at most MAX_CLASSES_FOR_INTEGER_TARGET, written as integers or as floats
    such as 0.0/1.0) are classes; other numbers are regression. Noted, with the reason."""
    if task is not None:
        notes.decide(f"task: {task} (as asked)")
        return task
    n_unique = y.dropna().nunique()
    whole = whole_numbers(y)
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        inferred, why = "classification", "the target holds labels"
    elif whole and n_unique <= MAX_CLASSES_FOR_INTEGER_TARGET:
        kind = "integer values" if pd.api.types.is_integer_dtype(y) else "whole numbers written as floats"
        inferred, why = "classification", f"the target holds {n_unique} {kind}"
    elif whole:  # it looks like a class column, but has too many values for one
        inferred, why = "regression", (f"the target holds {n_unique} distinct whole numbers, more than "
                                       f"the {MAX_CLASSES_FOR_INTEGER_TARGET} a class column may have")
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
            only = y.iloc[0].item() if isinstance(y.iloc[0], np.generic) else y.iloc[0]
            raise TargetError(f"the target {target!r} has a single class ({only!r}); nothing to learn")
    else:
        values = pd.to_numeric(y, errors="coerce")
        if values.isna().any():
            bad = y[values.isna()].iloc[0]
            raise TargetError(f"regression needs a numeric target; {target!r} holds {bad!r}")
        if not np.isfinite(values.to_numpy(dtype=float)).all():
            raise TargetError(f"the target {target!r} holds infinite values")
