"""The rows a model has seen, so that evaluating it on them is said: scores on training rows
overstate what a model does on new data.

A run saves, in ROWS_FILE, one 64-bit hash per row of its training and validation splits,
computed on the model's inputs (the rows after the fitted preprocessing, `row_hashes`): the same
raw row always gives the same input, so `evaluate` hashes its rows the same way and counts how
many the model saw. The hash is linear over the row's values read as unsigned words (of up to
MAX_WORDS positions, evenly spaced), with fixed random odd 64-bit multipliers, modulo 2^64:
vectorised, and two different rows collide with probability about 2^-64 each. Nothing of the
data can be read back from it.

Streamed image folders (decoded batch by batch) are not hashed: their rows never sit in memory
at once; an evaluation then says nothing.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepfit.core.io import atomic_write_bytes
from deepfit.core.notes import Notes

ROWS_FILE = "seen_rows.npz"
MAX_WORDS = 4096  # positions of a row that are hashed, evenly spaced (all of a table's row)
CHUNK_ROWS = 8192
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def row_hashes(features: Any) -> np.ndarray:
    """One uint64 hash per row of `features` [N, ...] (a tensor or an array of numbers)."""
    x = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    n = len(x)
    x = np.ascontiguousarray(x.reshape(n, -1))
    words = x.view(_UNSIGNED[x.dtype.itemsize]) if x.dtype.itemsize in _UNSIGNED else x.view(np.uint8)
    if words.shape[1] > MAX_WORDS:
        words = words[:, np.linspace(0, words.shape[1] - 1, MAX_WORDS).astype(np.int64)]
    rng = np.random.default_rng(20261207)
    multipliers = rng.integers(0, 2**63, words.shape[1], dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    out = np.empty(n, np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, n, CHUNK_ROWS):
            block = words[start:start + CHUNK_ROWS].astype(np.uint64)
            out[start:start + CHUNK_ROWS] = (block * multipliers).sum(axis=1, dtype=np.uint64)
    return out


def save_seen_rows(run_dir: Path, tensors: dict[str, tuple[Any, Any]]) -> None:
    """ROWS_FILE in `run_dir`: the sorted hashes of the training and validation inputs
    (`tensors`: Prepared.tensors); nothing for streamed samples."""
    if not all(isinstance(tensors[k][0], (torch.Tensor, np.ndarray)) for k in ("train", "val")):
        return
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.unique(row_hashes(tensors[k][0])) for k in ("train", "val")})
    atomic_write_bytes(Path(run_dir) / ROWS_FILE, buffer.getvalue())


def seen_counts(run_dir: Path, features: Any) -> dict[str, int] | None:
    """How many rows of `features` (the model's inputs) are among the run's training and
    validation rows: {"train": n, "val": n}; None when the run saved no hashes (or they cannot
    be read: an old or damaged run, nothing to say)."""
    path = Path(run_dir) / ROWS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            seen = {k: saved[k] for k in ("train", "val")}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if any(v.dtype != np.uint64 or v.ndim != 1 for v in seen.values()):
        return None
    hashes = row_hashes(features)
    return {k: int(np.isin(hashes, v).sum()) for k, v in seen.items()}


def warn_if_seen(counts: dict[str, int] | None, n_rows: int, notes: Notes) -> None:
    """A warning when rows being evaluated are rows the model was trained or early-stopped on."""
    if not counts or not (counts["train"] or counts["val"]):
        return
    parts = [f"{counts[k]:,} of the {n_rows:,} rows ({counts[k] / max(n_rows, 1):.0%}) are rows "
             f"of its {name} split" for k, name in (("train", "training"), ("val", "validation"))
             if counts[k]]
    notes.warn("the model has seen these rows: " + "; ".join(parts) + ": the scores overstate "
               "what it does on new data; evaluate on rows it never saw (its own test split's "
               "scores are in the run's metrics.json)")
