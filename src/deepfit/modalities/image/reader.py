"""The image readers (priority 20; torchvision's named sets, modalities/image/named_sets.py, at 10).

A source is images when (the rule `load_images` applies, before the tabular and sequence ones):
    a directory                                   always (one subfolder per class)
    an .npz, or arrays with y, whose X has
        ndim 4: [N, H, W, C] or [N, C, H, W]      always (C in 1, 3, 4; [N, C, H, W] when both fit)
        ndim 3: [N, H, W]                         when an image model is asked for, or when the
                                                  array looks like images (data/kinds.py:
                                                  uint8, or square float frames in [0, 1]; noted,
                                                  with --modality sequence to read it otherwise);
                                                  else the rows are sequences, [N, T, C]
    the bundled `digits`                          only when an image model is asked for: [N, 1, 8, 8]
Images become one uint8 array [N, C, H, W] (uint16 for images of more than 8 bits, scaled to 8 bits
by the training range in ImagePreprocessor; float32 when the source holds other values), decoded
once. A folder's files of any size and mode are resized to `image_size` (default: their median
side) and converted to one channel count (3 when any of them has colour, else 1); unreadable or
corrupt files are skipped and each is named (logged, and in config.json). A folder too large for
the memory cache is streamed instead: X is then an `ImageFiles`, decoded batch by batch
(modalities/image/files.py has the rules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfit.core.notes import Notes
from deepfit.data.common import npz_arrays, npz_shape
from deepfit.data.dataset import Dataset
from deepfit.data.kinds import image_like, image_note, npz_image_like
from deepfit.data.readers import ReadRequest
from deepfit.data.targets import labelled_target
from deepfit.errors import DataFormatError, SettingsError, TargetError
from deepfit.modalities.image.arrays import digits_images, digits_labels, fit_size, to_nchw
from deepfit.modalities.image.files import ImageFiles, read_image_folder
from deepfit.modalities.image.named_sets import load_named, named_set

MODALITY = "image"


def read_images(request: ReadRequest) -> Dataset | None:
    """The source as images (the module docstring's rule), else None. A train/ val/ test/
    folder read as held-out data gives its test/ images."""
    notes = request.notes
    images = load_images(request.source, request.y, modality=request.modality,
                         held_out=request.held_out,
                         image_size=request.image_size, notes=notes, loader=request.loader,
                         cache_limit_mb=request.cache_limit_mb)
    if images is None:
        return None
    X, y, name, skipped, reading = images
    if request.held_out and reading and reading.get("splits"):
        X, y, reading = held_out_images(X, y, reading, request.source, notes)
    target = request.target or "target"
    y, task = labelled_target(y, target, request.task, notes, request.held_out)
    return Dataset(X, y, name, target, task, modality=MODALITY, skipped_files=skipped,
                   reading=reading)


def read_named_set(request: ReadRequest) -> Dataset | None:
    """torchvision's MNIST, Fashion-MNIST and CIFAR-10 by name, read from `data_root`."""
    if (spec := named_set(request.source)) is None or request.y is not None:
        return None
    if request.target not in (None, "target"):
        raise TargetError(f"{spec.name} has one target, 'target' (its classes)")
    return load_named(spec, root=request.data_root, download=request.download,
                      held_out=request.held_out, modality=request.modality,
                      image_size=request.image_size, task=request.task, notes=request.notes)


def load_images(source: Any, y: Any, *, modality: str | None, image_size: int | tuple[int, int] | None,
                held_out: bool = False,
                notes: Notes, loader: str = "auto", cache_limit_mb: float | None = None,
                ) -> tuple[np.ndarray | ImageFiles, pd.Series, str, list[str] | None, dict | None] | None:
    """(X [N, C, H, W], the raw labels, the source's name, a folder's skipped files or None,
    how a folder's files were read or None: read_image_folder's last item, with its own splits
    for a train/ val/ test/ folder) when `source` holds images by the rule above, else None.
    `modality` is that of the model
    asked for (None: not named); `image_size`: a side, or (H, W); `loader` and `cache_limit_mb`:
    whether a folder is cached or streamed (modalities/image/files.py)."""
    wants_images = modality == "image"
    if modality not in (None, "image"):
        if isinstance(source, (str, Path)) and Path(source).is_dir():
            raise SettingsError(f"{source} is a folder of images, but the model asked for takes "
                                f"{modality} data; use an image model (cnn, resnet18, transfer:<name>)")
        return None
    if y is not None:
        X = np.asarray(source) if not isinstance(source, pd.DataFrame) else None
        if X is None:
            return None
        why = image_like(X) if X.ndim == 3 and modality is None else None
        if not (X.ndim == 4 or (X.ndim == 3 and (wants_images or why))):
            return None
        labels = np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(X):
            raise DataFormatError(f"y must hold one label per image, got shape {list(labels.shape)} "
                                  f"for {len(X)} images")
        if why:
            notes.decide(image_note(X.shape, why))
        X = fit_size(to_nchw(X, "", finite=held_out), image_size, notes)
        return X, pd.Series(np.asarray(y), name="target"), "arrays", None, None
    if not isinstance(source, (str, Path)):
        return None
    path = Path(source)
    if path.is_dir():
        X, labels, skipped, reading = read_image_folder(path, image_size, notes, loader=loader,
                                                        cache_limit_mb=cache_limit_mb)
        return X, pd.Series(labels, name="target", dtype=object), path.name, skipped, reading
    if path.suffix.lower() == ".npz" and path.is_file():
        ndim = len(npz_shape(path, "X"))
        why = npz_image_like(path) if ndim == 3 and modality is None else None
        if not (ndim == 4 or (ndim == 3 and (wants_images or why))):
            return None  # the other readers handle it (and name what is wrong with it)
        arrays = npz_arrays(path, need=("X", "y"))
        X = arrays["X"]
        if why:
            notes.decide(f"{path.name}: " + image_note(X.shape, why))
        if arrays["y"].ndim != 1 or len(arrays["y"]) != len(X):
            raise DataFormatError(f"{path}: y must hold one label per image, got shape "
                                  f"{arrays['y'].shape} for {len(X)} images")
        X = fit_size(to_nchw(X, f"{path}: ", finite=held_out), image_size, notes)
        return X, pd.Series(arrays["y"], name="target"), path.stem, None, None
    if str(source) == "digits" and wants_images and not path.exists():
        return fit_size(digits_images(), image_size, notes), digits_labels(), "digits", None, None
    return None


def held_out_images(X: Any, y: pd.Series, reading: dict, source: Any,
                    notes: Notes) -> tuple[Any, pd.Series, dict]:
    """A train/ val/ test/ folder read as held-out data (--test, evaluate): its test/ images."""
    rows = reading["splits"].get("test")
    if rows is None:
        raise DataFormatError(f"{source} is a folder of train/ and val/ images without a test/ "
                              "folder, so it holds no held-out images to test on")
    notes.decide(f"{Path(source).name}: its {reading['folders']['test']}/ folder's {len(rows)} images "
                 "are the held-out set")
    kept = {k: v for k, v in reading.items() if k not in ("splits", "folders")}
    if "files" in kept:  # each image's file name, in row order: the test/ rows'
        kept["files"] = [kept["files"][int(i)] for i in rows]
    return X[rows], y.iloc[rows].reset_index(drop=True), kept
