"""Files of rows: CSV (its encoding and delimiter detected, numbers as the file wrote them:
data/written.py), Parquet, and the arrays of an .npz. Used by the tabular and sequence readers,
and by predict for new rows."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from deepfit.core.notes import Notes
from deepfit.data.common import array_frame, check_path, npz_arrays, one_line
from deepfit.data.written import read_csv_text
from deepfit.errors import DataFormatError, SourceNotFoundError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


DELIMITERS = (",", ";", "\t", "|")  # the first wins a tie
SNIFF_LINES, SNIFF_CHARS = 50, 1 << 16
MAX_LINE_CHARS = 10_000_000  # a longer line is no row of a table (a binary file, a missing newline)
MAX_COLUMNS = 100_000


BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def read_table(path: Path | str, notes: Notes | None = None,
               written: dict[str, str] | None = None) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame, with its delimiter and encoding detected; numbers
    written with a decimal comma read as numbers and spaces around names and text values
    stripped (data/written.py), each decision noted. `written`: how a model's training file
    wrote each number column (its preprocessor's record), so a new file reads the same way."""
    notes = notes if notes is not None else Notes()
    path = Path(path)
    check_path(path)
    if not path.exists():
        raise SourceNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise DataFormatError(f"{path} is a directory, not a table")
    if path.suffix.lower() in (".parquet", ".pq"):
        _check_parquet_schema(path)
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise DataFormatError(f"{path} is not a readable Parquet file ({one_line(exc)})") from None
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
    _check_lines(path, text)
    delimiter = _detect_delimiter(text)
    _check_columns(path, text, delimiter)
    if delimiter != ",":
        notes.decide(f"{path.name}: detected the delimiter {delimiter!r}")
    try:
        return read_csv_text(text, delimiter, path.name, notes, written)
    except (ValueError, csv.Error) as exc:  # pandas' ParserError and EmptyDataError among them
        raise DataFormatError(f"{path} is not a readable CSV file ({one_line(exc)})") from None


def _check_lines(path: Path, text: str) -> None:
    """No line longer than MAX_LINE_CHARS. Windows of that length are searched for their last
    newline (in C), so a file of normal lines costs len / MAX_LINE_CHARS searches."""
    at, n = 0, len(text)
    while n - at > MAX_LINE_CHARS:
        newline = text.rfind("\n", at, at + MAX_LINE_CHARS + 1)
        if newline == -1:
            number = text.count("\n", 0, at) + 1
            raise DataFormatError(f"{path}: line {number:,} is longer than {MAX_LINE_CHARS:,} "
                                  "characters: not a table's row (a binary file, or newlines lost?)")
        at = newline + 1


def _check_columns(path: Path, text: str, delimiter: str) -> None:
    """The header holds at most MAX_COLUMNS fields (counted before pandas parses it)."""
    header = text[: text.find("\n")] if "\n" in text else text
    n = header.count(delimiter) + 1
    if n > MAX_COLUMNS:
        raise DataFormatError(f"{path}: its header has {n:,} columns, more than the limit of "
                              f"{MAX_COLUMNS:,}; a table that wide is no input for deepfit")


def _check_parquet_schema(path: Path) -> None:
    """Columns of nested types (lists, maps, structs, unions) are named: deepfit takes one
    value per cell (flatten them first, e.g. with pandas' json_normalize or explode)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise DataFormatError(f"{path} is not a readable Parquet file ({one_line(exc)})") from None
    nested = [f"{field.name!r} ({field.type})" for field in schema if pa.types.is_nested(field.type)]
    if nested:
        raise DataFormatError(f"{path} has columns of nested values, one value per cell is needed: "
                              f"{', '.join(nested[:10])}{' …' if len(nested) > 10 else ''}; flatten them "
                              "first (pandas' json_normalize, or explode for lists)")
    if len(schema) > MAX_COLUMNS:
        raise DataFormatError(f"{path} has {len(schema):,} columns, more than the limit of {MAX_COLUMNS:,}")


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


def read_npz_array(path: Path, key: str = "X") -> np.ndarray:
    """One array of an .npz as it is (the X of sequences or images)."""
    return npz_arrays(Path(path), need=(key,))[key]


def read_npz_features(path: Path) -> pd.DataFrame:
    """The features of an .npz file (its `y`, if any, is not needed)."""
    return array_frame(npz_arrays(path, need=("X",))["X"])


def read_npz(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    arrays = npz_arrays(path, need=("X", "y"))
    X, y = arrays["X"], arrays["y"]
    if y.ndim != 1:
        raise DataFormatError(f"{path}: y must be one-dimensional, got shape {y.shape}")
    X = array_frame(X, where=f"{path}: ")
    if len(X) != len(y):
        raise DataFormatError(f"{path}: X has {len(X)} rows but y has {len(y)}")
    return X, pd.Series(y, name="target")
