"""Helpers every reader shares: messages (one line, quoted names), arrays and .npz archives
read safely (never unpickling), and column names made strings. Below every other data module."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfit.errors import DataFormatError, SourceNotFoundError


def as_array(values: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(values)
    except (ValueError, TypeError) as exc:  # ragged nested lists, say
        raise DataFormatError(f"{name} cannot be read as an array ({one_line(exc)})") from None


def named_columns(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """A copy with string column names, which must be unique."""
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    twice = frame.columns[frame.columns.duplicated()].unique()
    if len(twice):
        raise DataFormatError(f"{where} has more than one column named {names(twice)}")
    return frame


def names(columns, limit: int = 12) -> str:
    """Column names for a message, each quoted so that a stray space shows: 'a', ' b'."""
    cols = [repr(str(c)) for c in columns]
    more = f", … ({len(cols)} in all)" if len(cols) > limit else ""
    return ", ".join(cols[:limit]) + more


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_path(path: Path) -> None:
    """A source path that exists must be a regular file or a folder: a FIFO, a device or a
    socket is refused before anything reads it (reading one blocks, or never ends). A path that
    does not exist passes: the reader that expects it names it."""
    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DataFormatError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise DataFormatError(f"{path} is {kind}, not a file: deepfit reads regular files and folders")


def check_array(a: np.ndarray, name: str, where: str = "", labels: bool = False) -> None:
    """An array given as data: no structured or void dtype, no dimension of size 0, and for
    features (`labels` False) numbers only (bool, integer or float)."""
    if a.dtype.names is not None or a.dtype.kind == "V":
        raise DataFormatError(f"{where}{name} has the structured dtype {a.dtype}: give a plain "
                              "array (one column per field), or a table for mixed types")
    if 0 in a.shape:
        raise DataFormatError(f"{where}{name} has shape {a.shape}: a dimension of size 0 holds no data")
    if not labels and a.dtype.kind not in "biuf":
        raise DataFormatError(f"{where}{name} must be numbers, got dtype {a.dtype}"
                              + ("; a table (DataFrame or CSV) takes text and categories"
                                 if a.dtype.kind in "OUS" else ""))
    if labels and a.dtype.kind == "c":
        raise DataFormatError(f"{where}{name} holds complex numbers, which are no labels or values")


def npz_arrays(path: Path, need: tuple[str, ...]) -> dict[str, np.ndarray]:
    check_path(path)
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
            raise DataFormatError(f"{path} is not a readable .npz file ({one_line(exc)})") from None
        raise DataFormatError(f"{path} holds arrays that need pickle to read (object dtype); "
                              "refused, nothing was unpickled") from None
    except Exception as exc:
        raise DataFormatError(f"{path} is not a readable .npz file ({one_line(exc)})") from None
    missing = [k for k in need if k not in arrays]
    if missing:
        raise DataFormatError(f"{path} has no array named {' or '.join(missing)}; it has {names(arrays)}")
    for key in need:
        check_array(arrays[key], key, f"{path}: ", labels=key != "X")
    return arrays


def array_frame(X: np.ndarray, where: str = "") -> pd.DataFrame:
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


def npz_shape(path: Path, key: str) -> tuple[int, ...]:
    """The shape of one array of an .npz, read from its header (the data stay on disk)."""
    header = npz_header(path, key)
    return header[0] if header is not None else ()  # the table path reports what is wrong


def npz_header(path: Path, key: str) -> tuple[tuple[int, ...], np.dtype] | None:
    """(shape, dtype) of one array of an .npz, read from its header (the data stay on disk);
    None when the archive or the array cannot be read."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            return tuple(shape), np.dtype(dtype)
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile):
        return None
