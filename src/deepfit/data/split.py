"""Seeded train / validation / test split, stratified for classification.

Rows are shuffled before splitting, so the validation split is never the file's last rows; the
windows of one time series are split by time instead, and a folder's own splits are kept
(`split_data` applies the rule the reader set).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from deepfit.core.notes import Notes
from deepfit.core.words import plural
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
    # anomaly labels (evaluation only) stratified too, so that every split holds its share
    stratify = task == "classification" or (task == "anomaly" and y.nunique() > 1)
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


def fixed_splits(parts: dict[str, np.ndarray], y: pd.Series, task: str, val_size: float,
                 test_size: float, seed: int, notes: Notes, *, test_given: bool = False) -> Splits:
    """The splits a source brought (a folder's train/ val/ test/: {split: row numbers}), used as
    they are; a split it lacks is carved from its training rows (split_indices: stratified,
    seeded, --val-size / --test-size as fractions of those rows). `test_given`: the test split
    comes from elsewhere (--test), so a test part is left out. Every choice is noted."""
    train = np.asarray(parts["train"])
    val = parts.get("val")
    test = None if test_given else parts.get("test")
    carve_val, carve_test = val is None, test is None and not test_given and test_size > 0
    unused = [flag for flag, given in (("--val-size", val is not None),
                                       ("--test-size", test is not None)) if given]
    if test_given and parts.get("test") is not None:
        notes.decide(f"the folder's test/ images ({len(parts['test'])}) are not used: --test gives the test split")
    if carve_val or carve_test:
        sizes = (val_size if carve_val else test_size, test_size if carve_val and carve_test else 0.0)
        inner = split_indices(y.iloc[train].reset_index(drop=True), task, sizes[0], sizes[1], seed)
        carved = train[inner.val]
        if carve_val:
            val = carved
            test = train[inner.test] if carve_test else test
        else:
            test = carved
        train = train[inner.train]
        what = " and ".join(name for name, flag in (("validation", carve_val), ("test", carve_test)) if flag)
        notes.decide(f"{what} split carved from the folder's training images (stratified, seeded)")
    test = np.zeros(0, dtype=np.int64) if test is None else np.asarray(test)
    notes.decide(f"splits: the folder's own split folders: {len(train)} train, {len(val)} "
                 f"validation, {len(test)} test images, no random split"
                 + (f" ({' and '.join(unused)} not used)" if unused else ""))
    return Splits(np.sort(train), np.sort(np.asarray(val)), np.sort(test))


def split_by_time(n: int, val_size: float, test_size: float, gap: int,
                  notes: Notes | None = None) -> Splits:
    """Windows 0 … n-1 in time order: train first, then validation, then test, never shuffled
    across, with `gap` windows left out at each boundary. Sizes are fractions of the windows
    that are kept."""
    boundaries = 2 if test_size > 0 else 1
    usable = n - gap * boundaries
    n_test = math.ceil(test_size * usable) if test_size > 0 else 0
    n_val = math.ceil(val_size * usable)
    n_train = usable - n_val - n_test
    if n_train < 2 or n_val < 2 or 0 < n_test < 2:
        raise SplitError(f"{n} windows are too few to split by time with {gap} left out at each "
                         f"boundary: {n_train} train, {n_val} validation, {n_test} test; give a "
                         "longer series, a shorter --window, or smaller --val-size / --test-size")
    val_start = n_train + gap
    test_start = val_start + n_val + gap
    splits = Splits(np.arange(n_train), np.arange(val_start, val_start + n_val),
                    np.arange(test_start, test_start + n_test))
    if notes is not None:
        notes.decide(f"split by time: windows 0–{n_train - 1} train, {val_start}–{val_start + n_val - 1} "
                     "validation" + (f", {test_start}–{n - 1} test" if n_test else "")
                     + f"; {plural(gap, 'window')} left out at each boundary so no window crosses it")
    return splits


def split_data(data: Any, val_size: float, test_size: float, seed: int, notes: Notes | None = None,
               *, test_given: bool = False) -> Splits:
    """The splits of a Dataset, by the rule its reader set: windows of one time series
    (`split_gap`) by time; a folder's own train/ val/ test/ (`reading["splits"]`) as they are;
    other rows shuffled, seeded and stratified. `test_given`: the test set is another file or
    the source's own, so `test_size` is 0. Raises SplitError for too few rows."""
    test_size = 0.0 if test_given else test_size
    if data.split_gap is not None:
        return split_by_time(len(data), val_size, test_size, data.split_gap, notes)
    if data.reading and data.reading.get("splits"):
        return fixed_splits(data.reading["splits"], data.y, data.task, val_size, test_size, seed,
                            notes if notes is not None else Notes(), test_given=test_given)
    return split_indices(data.y, data.task, val_size, test_size, seed)
