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

from deepfit.core.notes import Notes
from deepfit.core.words import noun_for, verb_for
from deepfit.data.numbers import examples
from deepfit.errors import DataFormatError

# DataFrame.attrs key: how a file wrote each number column, {column: "decimal_comma" |
# "decimal_point"}; the tabular Preprocessor keeps it so new files read alike
WRITTEN = "deepfit_written"

# one number written with a decimal comma and optional thousands dots: 28,84  -0,5  1.234,5  1.000
EUROPEAN = re.compile(r"^[+-]?([1-9]\d{0,2}(\.\d{3})+|\d+)(,\d+)?$")
DECIMAL_COMMA = re.compile(r"\d,\d")  # the cheap test of whether a file may hold any
MOSTLY = 0.9  # this share of a column written the European way: a number column, or an error


def read_csv_text(text: str, delimiter: str, file: str, notes: Notes,
                  written: dict[str, str] | None = None) -> pd.DataFrame:
    """The CSV text as a DataFrame (pandas.read_csv with `delimiter`), decimal-comma columns read
    as float64, names and text values stripped of surrounding spaces; each change noted, naming
    `file`. In a file not separated by commas, how each number column was written is left in
    frame.attrs[WRITTEN]; `written` (that record, saved with a model) makes a new file's columns
    read the same way, whatever its other columns hold. Raises pandas' or csv's errors for
    unreadable text (the caller names the file) and DataFormatError for a column mixing
    decimal-comma numbers with other values."""
    frame = pd.read_csv(io.StringIO(text), sep=delimiter, skipinitialspace=True)
    if delimiter != ",":
        frame = _decimal_commas(text, delimiter, frame, file, notes, written or {})
    raw_names = pd.read_csv(io.StringIO(text), sep=delimiter, nrows=0).columns
    attrs = dict(frame.attrs)
    frame = _strip_spaces(frame, [str(c) for c in raw_names], file, notes)
    frame.attrs.update(attrs)
    return frame


def _decimal_commas(text: str, delimiter: str, frame: pd.DataFrame, file: str, notes: Notes,
                    written: dict[str, str]) -> pd.DataFrame:
    """`frame` with its European-written columns replaced by pandas' decimal-comma reading, and
    frame.attrs[WRITTEN] saying how each number column was read. A column named in `written`
    is read as it says; the others as the file shows (module docstring)."""
    raw = pd.read_csv(io.StringIO(text), sep=delimiter, skipinitialspace=True, dtype=str)
    names = [str(c).strip() for c in raw.columns]
    chosen, dotted, with_comma = [], [], False
    for i in range(raw.shape[1]):
        values = raw.iloc[:, i].dropna().str.strip()
        values = values[values != ""]
        fits = values.str.match(EUROPEAN).to_numpy(dtype=bool)
        commas = values.str.contains(",", regex=False).to_numpy(dtype=bool)
        saved = written.get(names[i])
        if saved is not None:
            if saved == "decimal_comma" and fits.any() and not fits.all():
                raise DataFormatError(
                    f"{file}: column {names[i]!r} was written with a decimal comma in the training "
                    f"data, but here holds {examples(values[~fits])} among such numbers")
            if saved == "decimal_comma" and fits.all():  # else dot decimals no comma file writes
                chosen.append(i)
            continue
        if not (fits & commas).any():  # plain numbers or text: pandas' first reading stands
            if len(values) and fits.all() and values.str.contains(".", regex=False).any():
                dotted.append(i)  # 1.000 and 12.500: thousands dots, if the file uses commas
            continue
        if not fits.all():
            if fits.mean() >= MOSTLY:
                raise DataFormatError(
                    f"{file}: column {names[i]!r} mixes numbers written with a decimal comma with "
                    f"other values ({examples(values[~fits])}); clean it or make it all text")
            continue
        chosen.append(i)
        with_comma = True
    if with_comma:
        chosen += dotted
    if chosen:
        european = pd.read_csv(io.StringIO(text), sep=delimiter, skipinitialspace=True,
                               decimal=",", thousands=".")
        chosen = [i for i in chosen if pd.api.types.is_numeric_dtype(european.iloc[:, i])]
        frame = frame.copy()
        for i in chosen:
            frame.isetitem(i, european.iloc[:, i].astype(np.float64))
    _note_decimal_commas(file, [names[i] for i in chosen], [names[i] for i in dotted if i in chosen],
                         written, notes)
    frame.attrs[WRITTEN] = {names[i]: "decimal_comma" if i in chosen else "decimal_point"
                            for i in range(frame.shape[1])
                            if pd.api.types.is_numeric_dtype(frame.iloc[:, i])}
    return frame


def _note_decimal_commas(file: str, chosen: list[str], dotted: list[str],
                         written: dict[str, str], notes: Notes) -> None:
    """Say which columns were read the European way, and warn of those whose only sign was the
    file's other columns (a dot-only column is ambiguous on its own: 1.234 or 1234)."""
    if not chosen:
        return
    how = "as the model was trained" if all(n in written for n in chosen) else "read as numbers"
    commas = [n for n in chosen if n not in dotted]
    if commas:
        notes.decide(f"{file}: {noun_for(len(commas), 'column')} {', '.join(map(repr, commas))} written with a decimal "
                     f"comma (thousands dots allowed); {how}")
    if dotted:
        notes.warn(f"{file}: {noun_for(len(dotted), 'column')} {', '.join(map(repr, dotted))} {verb_for(len(dotted), 'hold')} only numbers with "
                   "dots like 1.000, read as thousands (1000) because this file writes decimals "
                   "with a comma; if those dots are decimal points, write them as 1,000")


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
        notes.decide(f"{file}: stripped the spaces around {noun_for(len(spaced), 'column name')} "
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
        notes.decide(f"{file}: stripped the spaces around the values of text "
                     f"{noun_for(len(stripped), 'column')} "
                     f"{', '.join(stripped)}")
    return frame
