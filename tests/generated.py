"""Generated data several test modules share (nothing downloaded)."""

from __future__ import annotations

import numpy as np


def motif_sequences(n: int = 600, length: int = 32, gap: int = 5, seed: int = 0):
    """The class is the order of a peak and a dip `gap` steps apart, at a random position: no
    single value tells it, so trees on the raw values fail; a 1-D CNN finds it."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 0.5, (n, length)).astype(np.float32)
    y = rng.integers(0, 2, n)
    for i in range(n):
        p, sign = rng.integers(0, length - gap), 1 if y[i] else -1
        X[i, p] += 2 * sign
        X[i, p + gap] -= 2 * sign
    return X[:, :, None], np.where(y == 1, "peak_first", "dip_first")
