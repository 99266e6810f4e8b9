"""Data audit of images and sequences (arrays [N, C, H, W] and [N, T, C]); audit.py's
`audit_data` calls `audit_arrays` for them, after the checks every modality shares.

    non_finite        NaN or Inf values: in images an error (the image reader already refuses
                      them, naming the images); sequences have them set to their channel's mean
                      (warning)
    blank             samples holding one value throughout (a blank image, a flat sequence)
    constant_channel  a channel with one value in every sample: it carries nothing
    duplicates, conflicting_labels, split_leak
                      audit.py's row checks with one key per sample (a hash of its bytes), for
                      independent samples (images, an .npz of sequences)
    identical         every image the same: an error that, for a folder, blames the decoding
                      (a conversion that lost the contrast), not duplicates in the data
    exif_orientation, bit_depth, split_layout
                      how a folder's files were read (info): images turned by their EXIF tag,
                      files of more than 8 bits and their values, the folder's own splits
    window_overlap    windows of one time series: no row may be read by windows of two splits
                      (checked on the indices, whatever split produced them)
    time_order        a time series' time column must increase down the file: windows follow
                      the file's order
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from deepfit.checks.audit import _rows, duplicate_rows, row_keys, split_leakage
from deepfit.checks.findings import Finding, names
from deepfit.data.image_files import ImageFiles
from deepfit.data.sources import Dataset
from deepfit.data.split import Splits

BLANK_SHARE = 0.01  # blank samples above this share: a warning, below it a note


def audit_arrays(data: Dataset, splits: Splits | None = None,
                 test_data: Dataset | None = None) -> list[Finding]:
    if len(data) == 0:
        return []
    independent = data.split_gap is None
    stats = _stats(_chunks(data.X), data.modality, keys=independent)
    findings = reading(data, stats) + non_finite(stats, data.modality)
    findings += blank_samples(stats, data.modality) + constant_channels(stats, data.modality)
    if independent:  # independent samples
        keys = stats["keys"]  # one hash per sample, of its bytes (a large set: hashed once)
        findings += identical(data, keys) or duplicate_rows(data, keys)
        if splits is not None:
            findings += split_leakage(data, splits, test_data, keys)
        return findings
    if splits is not None:
        findings += window_overlap(splits, data.split_gap + 1, len(data))
    if data.times is not None:
        findings += time_order(data.times, data.series["time_column"])
    return findings


def reading(data: Dataset, stats: dict[str, np.ndarray]) -> list[Finding]:
    """How a folder of image files was read (data/image_files.py), as info findings."""
    facts, findings = data.reading or {}, []
    if facts.get("exif_rotated"):
        n = facts["exif_rotated"]
        findings.append(Finding("exif_orientation", "info", f"{n} image(s) carry an EXIF "
                                "orientation tag: each is turned as a viewer shows it", "", float(n)))
    if facts.get("deep"):
        n, lo, hi = facts["deep"], stats["min"].min(), stats["max"].max()
        how = ("scaled to 8 bits by the training split's range (saved with the model)"
               if facts.get("dtype") == "uint16" else "standardised as float values")
        findings.append(Finding("bit_depth", "info", f"{n} image(s) have more than 8 bits (modes "
                                f"{', '.join(facts['modes'])}), values {lo:g} to {hi:g}: {how}",
                                "", float(n)))
    if facts.get("splits"):
        sizes = ", ".join(f"{facts['folders'][part]}/ {len(rows)}" for part, rows in facts["splits"].items())
        findings.append(Finding("split_layout", "info", f"the folder holds its own splits ({sizes} "
                                "images): used as they are, no random split; --val-size / "
                                "--test-size only carve a split it lacks from train/", "",
                                float(len(facts["splits"]))))
    return findings


def identical(data: Dataset, keys: np.ndarray) -> list[Finding]:
    """Every image the same (more than one): for decoded files, the decoding lost the contrast."""
    if data.modality != "image" or len(keys) < 2 or len(np.unique(keys)) > 1:
        return []
    facts = data.reading
    if facts is not None:
        message = (f"all {len(keys)} images decode to the same pixels: the decoding lost their "
                   f"contrast (modes {', '.join(facts['modes'])}); these are not duplicate files")
        fix = "convert the files to 8-bit PNG or JPEG, and tell deepfit's authors which format this was"
    else:
        message = f"all {len(keys)} images are identical: nothing tells the classes apart"
        fix = "check how the image array was made (a conversion that flattened it, a broadcast)"
    return [Finding("identical", "error", message, "", float(len(keys)), fix)]


CHUNK = 1024  # samples looked at at once: no full-size temporary of a large image set


def _chunks(X: Any) -> Iterator[np.ndarray]:
    """The samples CHUNK at a time; a streamed image folder (ImageFiles) decodes each chunk."""
    if isinstance(X, ImageFiles):
        yield from X.chunks(CHUNK)
        return
    X = np.asarray(X)
    for i in range(0, len(X), CHUNK):
        yield X[i : i + CHUNK]


def _stats(chunks: Iterable[np.ndarray], modality: str, keys: bool = False) -> dict[str, np.ndarray]:
    """Per sample: non-finite count, min and max, and (`keys`) a hash of its bytes; per channel:
    min and max (NaN ignored). One pass over the chunks."""
    bad, lo, hi, c_lo, c_hi, hashes = [], [], [], [], [], []
    for chunk in chunks:
        channel_axis = 1 if modality == "image" else chunk.ndim - 1  # [N, C, H, W] or [N, T, C]
        other = tuple(a for a in range(chunk.ndim) if a != channel_axis)
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        n = sum(len(v) for v in lo)
        return {"bad": np.concatenate(bad) if bad else np.zeros(n, dtype=np.int64),
                "keys": np.concatenate(hashes) if hashes else None,
                "min": np.concatenate(lo), "max": np.concatenate(hi),
                "channel_min": np.nanmin(np.stack(c_lo), axis=0),
                "channel_max": np.nanmax(np.stack(c_hi), axis=0)}


def _what(modality: str, n: int = 2) -> str:
    word = "image" if modality == "image" else "sequence"
    return word if n == 1 else word + "s"


def non_finite(stats: dict[str, np.ndarray], modality: str) -> list[Finding]:
    samples = np.flatnonzero(stats["bad"])
    if not len(samples):
        return []
    what = _what(modality, len(samples))
    message = f"{int(stats['bad'].sum())} NaN or infinite value(s) in {len(samples)} {what}"
    if modality == "image":
        return [Finding("non_finite", "error", message + ": they reach the model and make the loss "
                        "NaN", _rows(samples), float(len(samples)),
                        "drop or repair those images (re-export them; check the conversion to floats)")]
    return [Finding("non_finite", "warning", message + ": deepfit sets each to its channel's "
                    "training mean, which may not be what was measured", _rows(samples),
                    float(len(samples)), "fill the gaps yourself (interpolate), or drop those sequences")]


def blank_samples(stats: dict[str, np.ndarray], modality: str) -> list[Finding]:
    """Samples whose every (finite) value is the same."""
    blank = np.flatnonzero(stats["min"] == stats["max"])
    if not len(blank):
        return []
    share = len(blank) / len(stats["min"])
    what = _what(modality, len(blank))
    severity = "warning" if share > BLANK_SHARE or modality == "image" else "info"
    kind = "a single flat colour" if modality == "image" else "one value at every step and channel"
    return [Finding(
        "blank", severity, f"{len(blank)} {what} ({share:.1%}) hold {kind}: nothing in them "
        "tells the classes or values apart", _rows(blank), float(len(blank)),
        "drop them if they are failed captures or padding; keep them only if blank is a real case")]


def constant_channels(stats: dict[str, np.ndarray], modality: str) -> list[Finding]:
    constant = np.flatnonzero(stats["channel_min"] == stats["channel_max"])
    n_channels = len(stats["channel_min"])
    if not len(constant) or n_channels == 1:
        return []  # one channel, one value everywhere: every sample is blank, and blank says it
    return [Finding(
        "constant_channel", "warning",
        f"{len(constant)} of {n_channels} channel(s) hold one value in every {_what(modality, 1)}: "
        "they carry no information", names([f"channel {c}" for c in constant]),
        float(len(constant)),
        "drop those channels (or columns of the series), or check how they were recorded")]


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
    where = "; ".join(f"{pair}: {_rows(rows, 4)}" for pair, rows in shared.items())
    return [Finding(
        "window_overlap", "error",
        f"{n_shared} row(s) of the series are read by windows of two splits ({where}): the model "
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
            f"the time column {column!r} goes back in time at {len(back)} row(s), first at row "
            f"{first} ({present[first]} after {present[present.index.get_loc(first) - 1]}): "
            "windows follow the file's order, so they would mix times", _rows(back.to_numpy()),
            float(len(back)), f"sort the file by {column!r} before training"))
    if len(repeat):
        findings.append(Finding(
            "time_order", "warning",
            f"the time column {column!r} repeats its previous value at {len(repeat)} row(s): "
            "several series interleaved, or duplicated rows", _rows(repeat.to_numpy()),
            float(len(repeat)), "keep one series per file (one row per time), or drop the repeats"))
    return findings
