"""The rows a model has seen, so that evaluating it on them is said: scores on training rows
overstate what a model does on new data.

A run saves, in ROWS_FILE, one 64-bit hash per row of its training and validation splits,
computed on the model's inputs (the rows after the fitted preprocessing, `row_hashes`): the same
raw row always gives the same input, so `evaluate` hashes its rows the same way and counts how
many the model saw. The hash is the data audit's (checks/rows.py: row_keys, BLAKE2b of each
row's bytes, 8 bytes kept); nothing of the data can be read back from it.

Streamed image folders (decoded batch by batch) are not hashed: their rows never sit in memory
at once; an evaluation then says nothing.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepfit.checks.rows import row_keys
from deepfit.core.io import atomic_write_bytes
from deepfit.core.notes import Notes

ROWS_FILE = "seen_rows.npz"


def row_hashes(features: Any) -> np.ndarray:
    """One uint64 hash per row of `features` [N, ...] (a tensor or an array of numbers): the
    audit's row_keys (checks/rows.py) of the rows' bytes."""
    x = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    return row_keys(x)


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
