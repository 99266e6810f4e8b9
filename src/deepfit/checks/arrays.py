"""Data audit of array samples (images [N, C, H, W], sequences [N, T, C], any dense [N, ...]),
for the modalities whose samples are arrays: each calls `audit_arrays` with its `ArrayKind` (its
words, its channel axis, its severities) and its own checks (modalities/*/audit.py).

    non_finite        NaN or Inf values (the kind says how bad: images refuse them, sequences
                      have them set to their channel's mean)
    blank             samples holding one value throughout (a flat sequence), or, for a kind
                      that says so, one value in each channel (a blank image: one flat colour);
                      found in the pass that reads the samples (a streamed folder's only one)
    constant_channel  a channel with one value in every sample: it carries nothing
    duplicates, conflicting_labels, split_leak
                      checks/rows.py's row checks with one key per sample (a hash of its
                      bytes), for independent samples (not windows of one series)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepfit.checks.findings import Finding, names
from deepfit.checks.rows import duplicate_rows, positions_text, row_keys, split_leakage
from deepfit.core.words import plural, verb_for
from deepfit.data.dataset import Dataset, Streamed
from deepfit.data.split import Splits

BLANK_SHARE = 0.01  # blank samples above this share: a warning, below it a note
CHUNK = 1024  # samples looked at at once: no full-size temporary of a large image set

Check = Callable[..., list[Finding]]


def _none(*_: Any) -> list[Finding]:
    return []


@dataclass(frozen=True)
class ArrayKind:
    """How a modality's array samples are audited.

    noun: one sample ("image"); channel_axis: the channels' axis in a batch [N, ...] (1 for
    [N, C, H, W], -1 for [N, T, C]); non_finite: (severity, consequence, fix) of NaN or Inf
    values; blank_always_warns: a blank sample warns however few (else only above BLANK_SHARE);
    blank_kind: what a blank sample holds, in words; blank_by_channel: a sample is blank when each
    of its channels holds one value (a flat colour), not only all its values; blank_why, blank_fix:
    what blank samples mean and what to do; subject(data, positions): the samples at these
    positions named for a finding ("rows 3, 7"; an image folder's file names); before(data, stats): the modality's findings
    from the one pass of statistics; same_samples(data, keys): findings when the samples'
    keys say more than duplicates (every image the same), which then replace the duplicate
    check; ordered(data, splits): the checks of windows of one series (split_gap set)."""

    noun: str
    channel_axis: int = -1
    non_finite: tuple[str, str, str] = (
        "warning", "they reach the model unless the preprocessing fills them",
        "repair or drop those samples")
    blank_always_warns: bool = False
    blank_kind: str = "one value throughout"
    blank_by_channel: bool = False
    blank_why: str = "nothing in them tells the classes or values apart"
    blank_fix: str = "drop them if they are failed captures or padding; keep them only if blank is a real case"
    subject: Check = positions_text
    before: Check = _none
    same_samples: Check = _none
    ordered: Check = _none

    def plural(self, n: int = 2) -> str:
        return self.noun if n == 1 else self.noun + "s"


def audit_arrays(data: Dataset, splits: Splits | None, test_data: Dataset | None,
                 kind: ArrayKind) -> list[Finding]:
    """The array checks of the module docstring, with `kind`'s own around them."""
    if len(data) == 0:
        return []
    independent = data.split_gap is None
    failed: list[tuple[int, str, str]] = []  # streamed samples that fail to decode: named, not fatal
    stats = _stats(_chunks(data.X, failed), kind.channel_axis, keys=independent)
    if failed:
        _leave_out(stats, [row for row, _, _ in failed])
    stats["failed"] = [(name, why) for _, name, why in failed]
    findings = kind.before(data, stats) + non_finite(data, stats, kind)
    findings += blank_samples(data, stats, kind) + constant_channels(stats, kind)
    if independent:  # independent samples
        keys = stats["keys"]  # one hash per sample, of its bytes (a large set: hashed once)
        findings += kind.same_samples(data, keys) or duplicate_rows(data, keys, kind.subject)
        if splits is not None:
            findings += split_leakage(data, splits, test_data, keys, kind.subject)
        return findings
    return findings + kind.ordered(data, splits)


def _chunks(X: Any, failed: list[tuple[int, str, str]]) -> Iterator[np.ndarray]:
    """The samples CHUNK at a time; streamed samples (an image folder) are read chunk by chunk,
    those that fail to decode going to `failed` (Streamed.chunks)."""
    if isinstance(X, Streamed):
        yield from X.chunks(CHUNK, failed=failed)
        return
    X = np.asarray(X)
    for i in range(0, len(X), CHUNK):
        yield X[i : i + CHUNK]


def _stats(chunks: Iterable[np.ndarray], channel_axis: int, keys: bool = False) -> dict[str, np.ndarray]:
    """Per sample: non-finite count, min and max, whether each channel holds one value ("flat"),
    and (`keys`) a hash of its bytes; per channel: min and max (NaN ignored). One pass over the
    chunks."""
    bad, lo, hi, c_lo, c_hi, hashes, flat_ = [], [], [], [], [], [], []
    for chunk in chunks:
        axis = channel_axis % chunk.ndim
        other = tuple(a for a in range(chunk.ndim) if a != axis)
        if keys:
            hashes.append(row_keys(chunk))
        if chunk.dtype.kind == "f":
            finite = np.isfinite(chunk)
            bad.append((~finite).reshape(len(chunk), -1).sum(axis=1))
            chunk = np.where(finite, chunk, np.nan)
        flat = chunk.reshape(len(chunk), -1)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN samples: NaN, not blank
            lo.append(np.nanmin(flat, axis=1))
            hi.append(np.nanmax(flat, axis=1))
            c_lo.append(np.nanmin(chunk, axis=other))
            c_hi.append(np.nanmax(chunk, axis=other))
            by_channel = np.moveaxis(chunk, axis, 1).reshape(len(chunk), chunk.shape[axis], -1)
            flat_.append((np.nanmin(by_channel, axis=2) == np.nanmax(by_channel, axis=2)).all(axis=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        n = sum(len(v) for v in lo)
        return {"bad": np.concatenate(bad) if bad else np.zeros(n, dtype=np.int64),
                "keys": np.concatenate(hashes) if hashes else None,
                "min": np.concatenate(lo), "max": np.concatenate(hi), "flat": np.concatenate(flat_),
                "channel_min": np.nanmin(np.stack(c_lo), axis=0),
                "channel_max": np.nanmax(np.stack(c_hi), axis=0)}


def _leave_out(stats: dict[str, Any], rows: list[int]) -> None:
    """Samples that could not be read (zeros in the chunks) neither blank nor duplicates: each
    gets a key of its own and values that are not one flat colour."""
    stats["flat"][rows] = False
    stats["min"][rows], stats["max"][rows] = 0, 1
    if stats["keys"] is not None:
        stats["keys"][rows] = np.arange(len(rows), dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)


def non_finite(data: Dataset, stats: dict[str, np.ndarray], kind: ArrayKind) -> list[Finding]:
    samples = np.flatnonzero(stats["bad"])
    if not len(samples):
        return []
    severity, consequence, fix = kind.non_finite
    message = (f"{plural(int(stats['bad'].sum()), 'NaN or infinite value')} in {len(samples)} "
               f"{kind.plural(len(samples))}: {consequence}")
    return [Finding("non_finite", severity, message, kind.subject(data, samples), float(len(samples)), fix)]


def blank_samples(data: Dataset, stats: dict[str, np.ndarray], kind: ArrayKind) -> list[Finding]:
    """Samples whose every (finite) value is the same (`blank_by_channel`: in each channel)."""
    blank = np.flatnonzero(stats["flat"] if kind.blank_by_channel else stats["min"] == stats["max"])
    if not len(blank):
        return []
    share = len(blank) / len(stats["min"])
    severity = "warning" if share > BLANK_SHARE or kind.blank_always_warns else "info"
    return [Finding(
        "blank", severity, f"{len(blank)} {kind.plural(len(blank))} ({share:.1%}) "
        f"{'holds' if len(blank) == 1 else 'hold'} {kind.blank_kind}: {kind.blank_why}",
        kind.subject(data, blank), float(len(blank)), kind.blank_fix)]


def constant_channels(stats: dict[str, np.ndarray], kind: ArrayKind) -> list[Finding]:
    constant = np.flatnonzero(stats["channel_min"] == stats["channel_max"])
    n_channels = len(stats["channel_min"])
    if not len(constant) or n_channels == 1:
        return []  # one channel, one value everywhere: every sample is blank, and blank says it
    return [Finding(
        "constant_channel", "warning",
        f"{len(constant)} of {plural(n_channels, 'channel')} {verb_for(len(constant), 'hold')} one value in every {kind.noun}: "
        "they carry no information", names([f"channel {c}" for c in constant]),
        float(len(constant)),
        "drop those channels (or columns of the series), or check how they were recorded")]


