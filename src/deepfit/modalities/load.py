"""`load_source`: any supported source as a `Dataset`, through the reader registry."""

from __future__ import annotations

from typing import Any

import numpy as np

from deepfit.config import UNSUPERVISED
from deepfit.core.notes import Notes
from deepfit.data.dataset import Dataset
from deepfit.data.readers import ReadRequest, read_source
from deepfit.modalities.base import get_modality


def load_source(
    source: Any,
    *,
    target: str | None = None,
    task: str | None = None,
    y: Any = None,
    notes: Notes | None = None,
    held_out: bool = False,
    modality: str | None = None,
    **reading: Any,
) -> Dataset:
    """Load features and target from any supported source and infer the task; every choice
    made is written to `notes`. The registered readers are asked in turn (data/readers.py:
    torchvision's named sets, images, sequences, then tables, and any registered from outside),
    the first to take the source reads it. Held-out data (a test file, data to evaluate on)
    may hold a single class; training data may not. `modality`: the kind of data asked for
    (--modality, or the only one of the model named), checked against the registry. `reading`:
    the other ReadRequest fields (window, horizon, image_size, data_root, download, loader,
    cache_limit_mb, written, options). Raises the named DeepfitError of what is wrong."""
    if modality is not None:
        get_modality(modality)  # a SettingsError naming the registered ones
    # arrays of samples [N, ...] learnt without labels (anomaly): placeholder labels, said to be none
    unlabelled = (task in UNSUPERVISED and y is None and target is None
                  and isinstance(source, np.ndarray) and source.ndim >= 3)
    request = ReadRequest(source, notes if notes is not None else Notes(), target=target,
                          task=task, y=np.zeros(len(source), dtype=np.int64) if unlabelled else y,
                          held_out=held_out, modality=modality, **reading)
    data = read_source(request)
    if unlabelled:
        data.target = None
    return data
