"""Tables as people write them: decimal commas, thousands dots and spaces around fields.

`read_csv_text` reads a CSV file's text with pandas and settles what the text alone decides, the
same way for training, --test, predict, evaluate and check (all of them read through
sources.read_table):
  - a field's leading spaces are skipped (pandas' skipinitialspace), and column names and the
    values of text columns lose their surrounding spaces (noted);
  - in a file not separated by commas, a column whose every value is written the European way
    (`28,84`, `-0,5`, `1.234,5`, `1.000`) is read as numbers by pandas' decimal="," and
    thousands="." options (noted). The rule is decided per column over all its values, never
    value by value; a column mostly written so but with other values among them is a named error.
"""

from __future__ import annotations

import io
import re
from collections import Counter

import numpy as np
import pandas as pd

from deepfit.data.preprocess import _examples
from deepfit.errors import DataFormatError
from deepfit.notes import Notes

# one number written with a decimal comma and optional thousands dots: 28,84  -0,5  1.234,5  1.000
EUROPEAN = re.compile(r"^[+-]?([1-9]\d{0,2}(\.\d{3})+|\d+)(,\d+)?$")
DECIMAL_COMMA = re.compile(r"\d,\d")  # the cheap test of whether a file may hold any
MOSTLY = 0.9  # this share of a column written the European way: a number column, or an error


def read_csv_text(text: str, delimiter: str, file: str, notes: Notes) -> pd.DataFrame:
    """The CSV text as a DataFrame (pandas.read_csv with `delimiter`), decimal-comma columns read
    as float64, names and text values stripped of surrounding spaces; each change noted, naming
    `file`. Raises pandas' or csv's errors for unreadable text (the caller names the file) and
    DataFormatError for a column mixing decimal-comma numbers with other values."""
    frame = pd.read_csv(io.StringIO(text), sep=delimiter, skipinitialspace=True)
    if delimiter != "," and DECIMAL_COMMA.search(text):
        frame = _decimal_commas(text, delimiter, frame, file, notes)
    raw_names = pd.read_csv(io.StringIO(text), sep=delimiter, nrows=0).columns
    return _strip_spaces(frame, [str(c) for c in raw_names], file, notes)


def _decimal_commas(text: str, delimiter: str, frame: pd.DataFrame, file: str,
                    notes: Notes) -> pd.DataFrame:
    """`frame` with its European-written columns replaced by pandas' decimal-comma reading."""
    raw = pd.read_csv(io.StringIO(text), sep=delimiter, skipinitialspace=True, dtype=str)
    chosen, with_comma = [], False
    for i in range(raw.shape[1]):
        values = raw.iloc[:, i].dropna().str.strip()
        values = values[values != ""]
        fits = values.str.match(EUROPEAN).to_numpy(dtype=bool)
        commas = values.str.contains(",", regex=False).to_numpy(dtype=bool)
        if not (fits & commas).any():  # plain numbers or text: pandas' first reading stands
            if len(values) and fits.all() and values.str.contains(".", regex=False).any():
                chosen.append(i)  # 1.000 and 12.500: thousands dots, if the file uses commas
            continue
        if not fits.all():
            if fits.mean() >= MOSTLY:
                name = str(raw.columns[i]).strip()
                raise DataFormatError(
                    f"{file}: column {name!r} mixes numbers written with a decimal comma with "
                    f"other values ({_examples(values[~fits])}); clean it or make it all text")
            continue
        chosen.append(i)
        with_comma = True
    if not with_comma:  # no decimal comma anywhere: a dot is a decimal point after all
        return frame
    european = pd.read_csv(io.StringIO(text), sep=delimiter, skipinitialspace=True,
                           decimal=",", thousands=".")
    chosen = [i for i in chosen if pd.api.types.is_numeric_dtype(european.iloc[:, i])]
    frame = frame.copy()
    for i in chosen:
        frame.isetitem(i, european.iloc[:, i].astype(np.float64))
    if chosen:
        names = ", ".join(repr(str(frame.columns[i]).strip()) for i in chosen)
        notes.decide(f"{file}: column(s) {names} written with a decimal comma (thousands "
                     "dots allowed); read as numbers")
    return frame


def _strip_spaces(frame: pd.DataFrame, raw_names: list[str], file: str,
                  notes: Notes) -> pd.DataFrame:
    """Names and text values without surrounding spaces (a file written with ", " between)."""
    spaced = [n for n in raw_names if n != n.strip()]
    times = Counter(n.strip() for n in raw_names)
    clash = [n for n in raw_names if times[n.strip()] > 1] if spaced else []
    if clash:
        raise DataFormatError(f"{file}: the columns {', '.join(map(repr, clash))} have the same "
                              "name once the spaces around it are stripped; rename one")
    if spaced:
        frame = frame.set_axis([c.strip() if isinstance(c, str) else c for c in frame.columns],
                               axis=1)
        notes.decide(f"{file}: stripped the spaces around column name(s) "
                     f"{', '.join(map(repr, spaced))}")
    stripped = []
    for i in range(frame.shape[1]):
        column = frame.iloc[:, i]
        if (isinstance(column.dtype, pd.CategoricalDtype)
                or not pd.api.types.is_string_dtype(column)):
            continue
        text = column.str.strip()
        if not text.equals(column):
            frame = frame if stripped else frame.copy()
            frame.isetitem(i, text)
            stripped.append(repr(str(frame.columns[i])))
    if stripped:
        notes.decide(f"{file}: stripped the spaces around the values of text column(s) "
                     f"{', '.join(stripped)}")
    return frame
