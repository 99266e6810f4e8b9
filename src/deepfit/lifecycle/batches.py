"""The training and validation batches of a run (data/batches.py), chosen once before training."""

from __future__ import annotations

from typing import Any

import torch

from deepfit.checks.before_training import drop_note
from deepfit.core.notes import Notes
from deepfit.data.batches import choose_loader, make_batches
from deepfit.data.dataset import Streamed
from deepfit.training import imbalance as imb


def run_batches(prepared: Any, t: Any, device: torch.device, notes: Notes,
                drop_single: bool = True):
    """Training and validation batches. `drop_single` (the model has BatchNorm): a last
    training batch of one row is left out of each epoch, decided here once (noted)."""
    X_train, y_train = prepared.tensors["train"]
    nbytes = sum(a.nbytes for pair in prepared.tensors.values() for a in pair)
    streamed = isinstance(X_train, Streamed)  # a folder read from disk batch by batch
    loader = "stream" if streamed else choose_loader(t.loader, nbytes, device)
    notes.decide(f"batches: {'in-memory fast path' if loader == 'memory' else 'streaming DataLoader'} "
                 f"on {device}" + (" (as asked)" if t.loader != "auto" else "")
                 + (f", {t.workers} workers decoding the files, standardised on the device"
                    if streamed else ""))
    kw = {"loader": loader, "seed": t.seed, "device": device, "workers": t.workers,
          "channels_last": device.type == "cuda" and X_train.ndim == 4,  # images on a GPU
          "transform": prepared.preprocessor.standardise if streamed else None}
    weights = None
    if prepared.imbalance is not None and prepared.imbalance.method == "sampler":
        weights = imb.sample_weights(y_train, prepared.imbalance.counts)
        notes.decide("oversampling the training split: each epoch draws its rows with replacement, "
                     "every class equally likely (validation and test keep their distribution)")
    train = make_batches(X_train, y_train, t.batch_size, shuffle=True, weights=weights,
                         drop_single=drop_single, **kw)
    if drop_single and train.n_used < train.n:
        notes.decide(drop_note(train.n, t.batch_size))
    val = make_batches(*prepared.tensors["val"], t.batch_size, shuffle=False, **kw)
    return train, val
