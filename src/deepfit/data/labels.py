"""What a numeric target's values say about it: whole numbers (integers, or floats such as 0.0/1.0)
may be class labels, and then they are integers whichever way the file wrote them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepfit.core.notes import Notes


def whole_numbers(y: pd.Series) -> bool:
    """Whether the target is numbers that are all whole (integers, or floats like 3.0)."""
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return False
    if pd.api.types.is_integer_dtype(y):
        return True
    values = y.dropna().to_numpy(dtype=np.float64)
    return bool(len(values)) and bool((np.abs(values) < 2.0**53).all()  # NaN and inf fail too
                                      and (values == np.round(values)).all())


def class_labels(y: pd.Series, task: str, notes: Notes) -> pd.Series:
    """Class labels written as whole floats (0.0/1.0) as integers (0/1), so that the classes
    trained on and predicted are 0 and 1 whichever way a file writes them. Noted."""
    if task != "classification" or pd.api.types.is_integer_dtype(y) or not whole_numbers(y) \
            or y.isna().any():
        return y
    labels = y.astype(np.int64)
    shown = ", ".join(map(str, sorted(pd.unique(y))[:4]))
    notes.decide(f"the target's labels {shown}{', …' if y.nunique() > 4 else ''} are whole "
                 "numbers written as floats; read as integer classes")
    return labels
