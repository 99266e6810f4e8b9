"""Which string columns of a table hold free text rather than categories.

A column is text when its (non-missing) values are mostly long, many-worded and mostly unique:
the median value has at least MIN_WORDS words and MIN_CHARS characters, and at least
MIN_UNIQUE of the values are distinct. A category column ("red", "Paris", "type B") fails the
length rule; an ID or a code ("A-1043") fails the words rule; a free-text column of a few
phrases repeated (a survey's "other: please say") fails the uniqueness rule and stays a
category. Calibrated on generated reviews and on the bundled sets (none has a string column).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepfit.data.numbers import is_missing

MIN_WORDS = 4
MIN_CHARS = 20
MIN_UNIQUE = 0.5
SAMPLE = 5000  # values looked at per column (the first ones: deterministic)


def text_evidence(column: pd.Series) -> dict[str, float] | None:
    """The evidence that `column` holds free text ({"words", "chars", "unique"}: the median
    words and characters of a value and the share of distinct values), or None when it holds
    numbers, dates, booleans, or too few strings to tell."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column) \
            or pd.api.types.is_datetime64_any_dtype(column):
        return None
    values = [v for v in column.iloc[:SAMPLE].tolist() if not is_missing(v)]
    if len(values) < 2 or not all(isinstance(v, str) for v in values):
        return None
    words = np.array([len(v.split()) for v in values])
    chars = np.array([len(v) for v in values])
    return {"words": float(np.median(words)), "chars": float(np.median(chars)),
            "unique": len(set(values)) / len(values)}


def is_text(evidence: dict[str, float] | None) -> bool:
    return (evidence is not None and evidence["words"] >= MIN_WORDS and evidence["chars"] >= MIN_CHARS
            and evidence["unique"] >= MIN_UNIQUE)


def text_columns(frame: pd.DataFrame) -> dict[str, str]:
    """The columns of `frame` that hold free text, each with why (a phrase for a note)."""
    found = {}
    for name in frame.columns:
        evidence = text_evidence(frame[name])
        if is_text(evidence):
            found[str(name)] = (f"median {evidence['words']:g} words, {evidence['chars']:g} characters, "
                                f"{evidence['unique']:.0%} of values distinct")
    return found
