"""The `Dataset` every reader returns: features, the raw target, and what they are; and
`Streamed`, the features a reader leaves on disk to be read batch by batch."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfit.data.written import WRITTEN


class Streamed(abc.ABC):
    """Samples too large for memory, read as they are needed: an array-like [N, ...] whose rows
    can be taken (`X[rows]` → Streamed), read in chunks, fingerprinted without reading every
    byte, and batched by a DataLoader (`source(y)`). The run passes them to the model as they
    are, and standardises each batch on the device with the preprocessor's `standardise`
    (modalities/image/files.py's ImageFiles is one)."""

    ndim: int

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def __getitem__(self, rows: Any) -> Streamed: ...

    @property
    @abc.abstractmethod
    def shape(self) -> tuple[int, ...]: ...

    @property
    @abc.abstractmethod
    def nbytes(self) -> int: ...

    @abc.abstractmethod
    def chunks(self, size: int, failed: list[tuple[int, str, str]] | None = None) -> Iterator[np.ndarray]:
        """The samples in order, as arrays of at most `size` rows. A sample that cannot be read
        raises a named DeepfitError; with a `failed` list, it is appended there instead, as
        (its row, its name, why), and its row holds zeros (the audit names them all)."""

    @abc.abstractmethod
    def fingerprint(self) -> bytes:
        """Bytes that change when the samples do (names and sizes, say)."""

    @abc.abstractmethod
    def source(self, y: Any) -> Any:
        """A map-style torch Dataset over the samples and targets `y` (a tensor)."""


@dataclass
class Dataset:
    """Features (a DataFrame with string column names), the raw target, and what they are."""

    X: pd.DataFrame
    y: pd.Series
    name: str
    target: str
    task: str
    modality: str = "tabular"
    # Windows of one time series (modalities/sequence/preprocess.py): split by time, leaving this many windows
    # out at each boundary. None: rows are independent and split shuffled.
    split_gap: int | None = None
    # the held-out set that came with the source (torchvision's): the test split (runs/prepare.py)
    test: Dataset | None = None
    # A time series' windows (modalities/sequence/preprocess.py): what forecasting from a new series needs (the
    # channel columns in order, target, window, horizon, time column), saved with the model.
    series: dict | None = None
    times: pd.Series | None = None  # … and its time column, one value per row (the audit's order check)
    # A folder of image files: those skipped as unreadable, each "name (why)"; None: not a folder
    skipped_files: list[str] | None = None
    # … and how its files were read (modalities/image/files.py: read_image_folder); its own splits
    # (a train/ val/ test/ folder) are reading["splits"], used by data/split.py's fixed_splits
    reading: dict | None = None

    def __len__(self) -> int:
        return len(self.X)


def written_numbers(data: Dataset) -> dict[str, str]:
    """How the file of a loaded table wrote each number column (data/written.py), to read a
    held-out file of the same data alike; empty for other data."""
    return dict(data.X.attrs.get(WRITTEN, {})) if isinstance(data.X, pd.DataFrame) else {}


def source_name(source: Any) -> str:
    if isinstance(source, (str, Path)):
        path = Path(source)
        return path.stem if path.suffix else str(source)
    return "arrays" if isinstance(source, np.ndarray) else "dataframe"
