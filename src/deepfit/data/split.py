"""Seeded train / validation / test split, stratified for classification.

Rows are always shuffled before splitting, so the validation split is never the file's last rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from deepfit.errors import SplitError


@dataclass(frozen=True)
class Splits:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray  # empty when the held-out set comes from its own file

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def split_indices(
    y: pd.Series, task: str, val_size: float, test_size: float, seed: int
) -> Splits:
    """Row indices of the three splits. Sizes are fractions of all rows."""
    n = len(y)
    n_test = math.ceil(test_size * n) if test_size > 0 else 0
    n_val = math.ceil(val_size * n)
    n_train = n - n_test - n_val
    if n_train < 2 or n_val < 2 or 0 < n_test < 2:
        raise SplitError(
            f"{n} rows are fewer than the split needs: at least 2 rows in each split, and these "
            f"sizes leave {max(n_train, 0)} train, {n_val} validation, {n_test} test; "
            "give more rows or smaller --val-size / --test-size"
        )
    stratify = task == "classification"
    if stratify:
        _check_stratifiable(y, n_train, n_val, n_test)
    labels = y.to_numpy()
    index = np.arange(n)
    rest, test = (index, index[:0])
    try:
        if n_test:
            rest, test = train_test_split(
                index, test_size=n_test, random_state=seed, shuffle=True,
                stratify=labels if stratify else None,
            )
        train, val = train_test_split(
            rest, test_size=n_val, random_state=seed + 1, shuffle=True,
            stratify=labels[rest] if stratify else None,
        )
    except ValueError as exc:  # a stratified split the checks above did not foresee
        raise SplitError(f"cannot split {n} rows into {n_train} train, {n_val} validation and "
                         f"{n_test} test rows: {exc}") from None
    return Splits(np.sort(train), np.sort(val), np.sort(test))


def _check_stratifiable(y: pd.Series, n_train: int, n_val: int, n_test: int) -> None:
    counts = y.value_counts()
    parts = 3 if n_test else 2
    small = counts[counts < parts]
    if len(small):
        names = ", ".join(f"{label!r} ({count})" for label, count in small.items())
        which = f"class {names} has" if len(small) == 1 else f"classes {names} have"
        raise SplitError(
            f"cannot stratify: {which} fewer samples than the {parts} splits; "
            "collect more samples or drop the class"
        )
    n_classes = len(counts)
    for name, size in (("training", n_train), ("validation", n_val), ("test", n_test)):
        if size and size < n_classes:
            raise SplitError(
                f"the {name} split would hold {size} rows, fewer than the {n_classes} classes; "
                "give more rows or a larger split size"
            )
