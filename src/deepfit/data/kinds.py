"""What kind of data an array holds when its shape alone leaves it open: the two rules the
readers share (images vs sequences for 3-D arrays, a table that looks like a signal).

`image_like`: a 3-D array [N, A, B] is either N images of A × B pixels or N sequences of A steps
of B channels. Its dtype and values decide: whole 8-bit numbers (uint8) with both sides at least
MIN_SIDE are pixels; so are square frames (A = B ≥ MIN_SIDE) of floats whose every (finite)
value lies in [0, 1], the range images are scaled to, or of integers in 0-255 (8-bit pixels
read from a CSV, say, as int64). Anything else stays a sequence. (A 4-D array is images
always; a 2-D one a table.)

`signal_like`: a table [N, F] whose columns are one ordered signal sampled F times (a sensor
trace, a spectrum, a flattened time series) rather than F separate measurements: many columns
(F ≥ MIN_SIGNAL_COLUMNS), all numbers, similar scales (the largest of the columns' standard deviations at most MAX_SCALE_RATIO
times the smallest: one column of another scale, an ID, rules it out), and neighbouring columns correlated (mean lag-1
correlation ≥ MIN_NEIGHBOUR_CORR) clearly more than columns far apart (by ≥ MIN_LOCALITY: the
mean |correlation| at 8 lags from F/4 to F/2, so that a periodic signal, whose
correlation comes back at each period, is not taken for a common factor). A common factor that correlates every column with every
other (lag-1 and far alike) is not a signal. Calibrated on scikit-learn's bundled sets (none
qualifies: breast cancer's and digits' scales differ far more than 10×; wine, diabetes and iris have too
few columns) and on generated sines, bumps and random walks (all qualify; white noise and
make_classification do not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepfit.data.common import npz_arrays, npz_header

MIN_SIDE = 8
MIN_SIGNAL_COLUMNS = 16
MAX_SCALE_RATIO = 10.0
MIN_NEIGHBOUR_CORR = 0.3
MIN_LOCALITY = 0.15
SAMPLE_ROWS = 2000  # rows the signal statistics look at (the first ones: deterministic)


def image_like(X: np.ndarray) -> str | None:
    """Why the 3-D array X [N, A, B] holds images rather than sequences (a phrase for a note),
    or None when it does not (or is not 3-D). Reads the values only for square float frames."""
    if X.ndim != 3 or min(X.shape[1:]) < MIN_SIDE:
        return None
    if X.dtype == np.uint8:  # (the values are not looked at: an empty X of the dtype will do)
        return "uint8 values, as pixels are"
    if X.dtype.kind in "fiu" and X.shape[1] == X.shape[2] and X.size:
        finite = X[np.isfinite(X)] if X.dtype.kind == "f" else X
        if not finite.size:
            return None
        lo, hi = finite.min(), finite.max()
        if X.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
            return "square frames of values in [0, 1], as images scaled to that range are"
        if X.dtype.kind in "iu" and lo >= 0 and hi <= 255 and hi > 1:
            return "square frames of whole numbers 0-255, as 8-bit pixels are"
    return None


def npz_image_like(path: Path) -> str | None:
    """`image_like` for the X of an .npz: from its header when the dtype settles it, reading X
    only for square float frames (whose values decide)."""
    header = npz_header(path, "X")
    if header is None or len(header[0]) != 3 or min(header[0][1:]) < MIN_SIDE:
        return None
    shape, dtype = header
    if dtype == np.uint8:
        return image_like(np.empty((0, *shape[1:]), np.uint8))
    if dtype.kind in "fiu" and shape[1] == shape[2]:
        return image_like(npz_arrays(path, need=("X",))["X"])
    return None


def image_note(shape: tuple[int, ...], why: str) -> str:
    """The note of an array read as images by `image_like`, with the flag that reads it otherwise."""
    a, b = shape[1:3]
    return (f"X of shape [N, {a}, {b}] read as {a}×{b} one-channel images ({why}); "
            f"--modality sequence reads it as {a}-step sequences of {b} channels")


def signal_note(evidence: dict[str, float]) -> str:
    """The note of a table that `signal_like` found to be a signal: the sequence models suggested."""
    f = evidence["columns"]
    return (f"the {f} columns look like one ordered signal (neighbouring columns correlate "
            f"{evidence['neighbour_corr']:.2f}, columns far apart {evidence['far_corr']:.2f}; "
            f"their scales within {evidence['scale_ratio']:.1f}×): a sequence model may do better "
            f"than a table's: --model cnn1d (or gru, lstm) reads each row as a {f}-step sequence, "
            "and deepfit advise tries one")


def signal_like(values: Any) -> dict[str, float] | None:
    """The evidence (columns, neighbour and far correlations, scale ratio) that the numeric
    table `values` [N, F] (an array or a DataFrame of numbers) is one ordered signal, by the
    rule of the module docstring; None when it is not (or holds anything but numbers)."""
    X = np.asarray(values)[:SAMPLE_ROWS]
    if X.ndim != 2 or X.shape[1] < MIN_SIGNAL_COLUMNS or X.shape[0] < 10 or X.dtype.kind not in "biuf":
        return None
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        X = np.where(np.isfinite(X), X, np.nanmean(np.where(np.isfinite(X), X, np.nan), axis=0))
    sd = X.std(axis=0)
    varying = sd > 0
    if varying.mean() < 0.9:
        return None
    scale = float(sd[varying].max() / sd[varying].min())
    if scale > MAX_SCALE_RATIO:
        return None
    Z = (X - X.mean(axis=0)) / np.where(varying, sd, 1.0)
    F = X.shape[1]

    def lag(k: int) -> np.ndarray:  # the correlation of each column with the one k to its right
        return (Z[:, :-k] * Z[:, k:]).mean(axis=0)

    neighbour = float(lag(1).mean())
    lags = np.unique(np.linspace(F // 4, F // 2, 8).astype(int))  # a periodic signal: |cos| averages
    far = float(np.mean([np.abs(lag(k)).mean() for k in lags]))
    if neighbour < MIN_NEIGHBOUR_CORR or neighbour - far < MIN_LOCALITY:
        return None
    return {"columns": F, "neighbour_corr": neighbour, "far_corr": far, "scale_ratio": scale}
