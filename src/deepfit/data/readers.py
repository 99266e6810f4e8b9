"""The reader registry: how a source becomes a `Dataset`.

A reader is `fn(request: ReadRequest) -> Dataset | None`: the Dataset when the source is its
kind, None when it is not (the next reader is asked), or a named DeepfitError when the source is
its kind but cannot be read. Readers are asked in order of `priority` (lowest first); each
modality registers its own (deepfit/modalities/*/modality.py, through
`deepfit.modalities.register_modality`), so `read_source` never names a modality. Built in:
torchvision's named sets 10, images 20, sequences 30, tables (the catch-all) 90.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfit.core.notes import Notes
from deepfit.data.dataset import Dataset, source_name
from deepfit.errors import DataFormatError, SettingsError


@dataclass(frozen=True)
class ReadRequest:
    """What `load_source` was asked to read, and how.

    source: a path, a bundled or named dataset's name, a DataFrame or an array; y: a separate
    target (arrays and DataFrames) or None; target: the target column's name; task:
    "classification", "regression" or None (inferred); held_out: a test file or data to evaluate
    on (may hold a single class; rows are not cleaned, the fitted preprocessing reads them);
    modality: the kind of data asked for (by --modality or the model's only modality), None when
    not named. The rest are the built-in modalities' reading settings: window and horizon (a
    time series, in rows), image_size (a side in pixels, or (H, W)), data_root and download
    (torchvision's sets), loader and cache_limit_mb (an image folder cached or streamed),
    written (how a model's training CSV wrote its numbers). `options`: settings of a modality
    registered from outside deepfit, by name."""

    source: Any
    notes: Notes
    target: str | None = None
    task: str | None = None
    y: Any = None
    held_out: bool = False
    modality: str | None = None
    window: int | None = None
    horizon: int | None = None
    image_size: int | tuple[int, int] | None = None
    data_root: str | None = None
    download: bool = False
    loader: str = "auto"
    cache_limit_mb: float | None = None
    written: dict[str, str] | None = None
    options: dict[str, Any] = field(default_factory=dict)


Reader = Callable[[ReadRequest], "Dataset | None"]


@dataclass(frozen=True)
class _Entry:
    priority: int
    name: str
    read: Reader


_READERS: list[_Entry] = []


def register_reader(name: str, read: Reader, priority: int = 50) -> None:
    """Ask `read` for sources in order of `priority` (lower first; a name registered again is
    replaced)."""
    _READERS[:] = [e for e in _READERS if e.name != name]
    _READERS.append(_Entry(priority, name, read))
    _READERS.sort(key=lambda e: (e.priority, e.name))


def reader_names() -> list[str]:
    """The registered readers, in the order they are asked."""
    return [e.name for e in _READERS]


def _check_given(request: ReadRequest) -> None:
    """What every reader would trip on, refused before any reads: a path that is a FIFO, a
    device or a socket; arrays of structured, void or (features) non-numeric dtype, or with a
    dimension of size 0 (data/common.py)."""
    import numpy as np

    from deepfit.data.common import check_array, check_path

    if isinstance(request.source, (str, Path)):
        check_path(Path(request.source))
    if isinstance(request.source, np.ndarray):
        check_array(request.source, "X")
    if isinstance(request.y, np.ndarray):
        check_array(request.y, "y", labels=True)


def read_source(request: ReadRequest) -> Dataset:
    """The Dataset of the first reader that takes the source. Raises DataFormatError when none
    does, and whatever named error the reader that takes it raises."""
    _check_given(request)
    for entry in _READERS:
        data = entry.read(request)
        if data is not None:
            if request.modality is not None and data.modality != request.modality:
                raise SettingsError(
                    f"{source_name(request.source)} reads as {data.modality} data, not as the "
                    f"{request.modality} data asked for (by --modality, or by the model named); "
                    f"leave --modality out, or name a model for {data.modality} data")
            return data
    raise DataFormatError(f"no reader takes a source of type {type(request.source).__name__}")
