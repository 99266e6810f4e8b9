"""The sequence audit: the array checks (checks/arrays.py) with sequences' words and
severities, and, for windows of one time series, what only they have:

    window_overlap    no row may be read by windows of two splits (checked on the indices,
                      whatever split produced them)
    time_order        the time column must increase down the file: windows follow its order
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepfit.checks.arrays import ArrayKind, audit_arrays
from deepfit.checks.findings import Finding
from deepfit.checks.rows import rows_text
from deepfit.core.words import plural, verb_for
from deepfit.data.dataset import Dataset
from deepfit.data.split import Splits


def window_overlap(splits: Splits, span: int, n_windows: int) -> list[Finding]:
    """Rows read by windows of two splits. Window i reads rows i … i + span - 1 (its W inputs and
    H targets); each split's rows are marked, and any row marked by two splits is a leak."""
    n_rows = n_windows + span - 1
    covered = {}
    for name, windows in (("train", splits.train), ("validation", splits.val), ("test", splits.test)):
        windows = np.asarray(windows, dtype=np.int64)
        mark = np.zeros(n_rows + 1, dtype=np.int64)
        np.add.at(mark, windows, 1)
        np.add.at(mark, windows + span, -1)
        covered[name] = np.cumsum(mark)[:n_rows] > 0
    shared = {}
    pairs = (("train", "validation"), ("train", "test"), ("validation", "test"))
    for a, b in pairs:
        rows = np.flatnonzero(covered[a] & covered[b])
        if len(rows):
            shared[f"{a}/{b}"] = rows
    if not shared:
        return [Finding("window_overlap", "info", f"no row is read by windows of two splits "
                        f"(each window reads {span} rows)", "", 0.0)]
    n_shared = len(np.unique(np.concatenate(list(shared.values()))))
    where = "; ".join(f"{pair}: {rows_text(rows, 4)}" for pair, rows in shared.items())
    return [Finding(
        "window_overlap", "error",
        f"{plural(n_shared, 'row')} of the series {verb_for(n_shared, 'are')} read by windows of two splits ({where}): the model "
        "is evaluated on values it trained on, so the metrics are too optimistic",
        where, float(n_shared),
        "split a time series by time with a gap of window + horizon - 1 windows at each "
        "boundary (what deepfit's split_by_time does); never shuffle its windows")]


def time_order(times: pd.Series, column: str) -> list[Finding]:
    """The time column must increase down the file: a step back is an error, a repeat a warning."""
    present = times.dropna()
    steps = present.diff().iloc[1:]
    zero = steps * 0
    back = present.index[1:][(steps < zero).to_numpy()]
    repeat = present.index[1:][(steps == zero).to_numpy()]
    findings = []
    if len(back):
        first = int(back[0])
        findings.append(Finding(
            "time_order", "error",
            f"the time column {column!r} goes back in time at {plural(len(back), 'row')}, first at row "
            f"{first} ({present[first]} after {present[present.index.get_loc(first) - 1]}): "
            "windows follow the file's order, so they would mix times", rows_text(back.to_numpy()),
            float(len(back)), f"sort the file by {column!r} before training"))
    if len(repeat):
        findings.append(Finding(
            "time_order", "warning",
            f"the time column {column!r} repeats its previous value at {plural(len(repeat), 'row')}: "
            "several series interleaved, or duplicated rows", rows_text(repeat.to_numpy()),
            float(len(repeat)), "keep one series per file (one row per time), or drop the repeats"))
    return findings


def _ordered(data: Dataset, splits: Splits | None) -> list[Finding]:
    """Windows of one time series: rows shared by the splits' windows, and the time order."""
    findings = []
    if splits is not None:
        findings += window_overlap(splits, data.split_gap + 1, len(data))
    if data.times is not None:
        findings += time_order(data.times, data.series["time_column"])
    return findings


SEQUENCES = ArrayKind(
    noun="sequence", channel_axis=-1,
    non_finite=("warning", "deepfit sets each to its channel's training mean, which may not be "
                "what was measured", "fill the gaps yourself (interpolate), or drop those sequences"),
    blank_kind="one value at every step and channel", ordered=_ordered)


def audit_sequences(data: Dataset, splits: Splits | None,
                    test_data: Dataset | None) -> list[Finding]:
    """The array checks with sequences' words, and windows' order and overlap across splits."""
    return audit_arrays(data, splits, test_data, SEQUENCES)
