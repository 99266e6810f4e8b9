"""The image preprocessor: per-channel standardisation fitted on the training images, and new
images (arrays, files, folders) brought to the training size and channels at predict time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepfit.core.notes import Notes
from deepfit.errors import DataFormatError, PredictInputError, RunDirError, SourceNotFoundError
from deepfit.modalities.image.arrays import convert_channels, resize, to_nchw
from deepfit.modalities.image.files import (
    CHUNK,
    IMAGE_SUFFIXES,
    ImageFiles,
    check_files,
    list_image_files,
)


class ImagePreprocessor:
    """Per-channel standardisation, fitted on the training images only.

    transform: [N, C, H, W] (uint8 read as value/255, floats as they are) → float32
    (x - mean[c]) / std[c]. Images of more than 8 bits (uint16: 16-bit files, arrays) are first
    scaled to 8 bits by `value_range`, the range of the training pixels (0.1th to 99.9th
    percentile), fitted here and saved. Arrays of another size are resized to the training size,
    grayscale is repeated to RGB and RGB reduced to luma (ITU-R 601) to match the training
    channels; a folder or an image file path is decoded as training decoded it.
    """

    columns: list[str] = ["image"]  # noqa: RUF012  (the input's named parts, for messages)

    def __init__(self) -> None:
        self.shape: tuple[int, int, int] = (0, 0, 0)  # C, H, W
        self.mean: list[float] = []
        self.std: list[float] = []
        self.unit_range = True  # fitted on uint8 (or uint16) images: raw values read in [0, 1]
        self.value_range: tuple[int, int] | None = None  # uint16 images: the training range
        self.decode = "uint8"  # how image files are decoded (uint16, float32: deeper files)
        self._on_device: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # standardise's mean, std

    def fit(self, X: np.ndarray | ImageFiles, notes: Notes | None = None) -> ImagePreprocessor:
        """The training images' per-channel mean and std, summed in float64 a chunk at a time:
        decoded from disk for ImageFiles, sliced from the array otherwise (same chunks, same
        sums: the two paths agree to the last bit)."""
        notes = notes if notes is not None else Notes()
        if isinstance(X, ImageFiles):  # a streamed folder: one pass over the training files
            chunks, n = X.chunks, len(X)
        else:
            X = to_nchw(np.asarray(X), "")
            chunks, n = (lambda size, X=X: (X[i : i + size] for i in range(0, len(X), size))), len(X)
        self.shape = tuple(int(s) for s in X.shape[1:])
        self.unit_range = X.dtype in (np.uint8, np.uint16)
        self.decode = np.dtype(X.dtype).name
        if X.dtype == np.uint16:  # a first pass: the training pixels' range
            self.value_range = training_range(chunks(CHUNK), notes)
        sums = np.zeros(self.shape[0]), np.zeros(self.shape[0])
        for chunk in chunks(CHUNK):  # float64 copies of a few images at a time
            chunk = _unit(self.eight_bits(chunk)).astype(np.float64)
            sums[0][:] += chunk.sum(axis=(0, 2, 3))
            sums[1][:] += (chunk**2).sum(axis=(0, 2, 3))
        count = n * self.shape[1] * self.shape[2]
        mean = sums[0] / count
        std = np.sqrt(np.maximum(sums[1] / count - mean**2, 0.0))
        if (std < 1e-8).any():
            notes.warn("an image channel is constant in the training split; it is left unscaled")
        self.mean, self.std = mean.tolist(), np.where(std < 1e-8, 1.0, std).tolist()
        notes.decide("images standardised per channel with the training split's mean "
                     f"{_fmt(self.mean)} and std {_fmt(self.std)}")
        return self

    def transform(self, X: Any, notes: Notes | None = None) -> np.ndarray:
        images = self.read(X)
        if not images.flags.writeable:  # a read-only array (memory-mapped, or a view of one)
            images = images.copy()
        return self.standardise(torch.from_numpy(images)).numpy()

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] at the training channels and size (uint8 read as value/255) → float32
        (x - mean[c]) / std[c], on x's device. `transform` and the streamed batches (on the
        training device) both come here, so their values are the same to the bit."""
        key = (x.device, tuple(self.mean), tuple(self.std))
        if key not in self._on_device:  # copied to the device once, not once a batch
            self._on_device[key] = tuple(torch.tensor(v, dtype=torch.float32, device=x.device)[None, :, None, None]
                                         for v in (self.mean, self.std))
        mean, std = self._on_device[key]
        if self.value_range is not None and x.dtype != torch.uint8:
            x = to_eight_bits(x, self.value_range)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return ((x - mean) / std).contiguous()

    def eight_bits(self, X: np.ndarray) -> np.ndarray:
        """uint16 images scaled to uint8 by the training range (what `standardise` does first);
        other images as they are."""
        if self.value_range is None or X.dtype == np.uint8:
            return X
        return to_eight_bits(torch.from_numpy(np.ascontiguousarray(X)), self.value_range).numpy()

    def read(self, X: Any) -> np.ndarray:
        """[N, C, H, W] at the training channels and size, from arrays, a folder or a file
        (uint8; uint16 for a model trained on images of more than 8 bits)."""
        c, h, w = self.shape
        if isinstance(X, (str, Path)):
            X, failed = self.image_files(Path(X))
            if failed:
                raise PredictInputError(f"cannot read {failed[0][0]}: {failed[0][1]}")
        if isinstance(X, ImageFiles):
            X = X.decode()
        X = np.asarray(X)
        if X.ndim == 2 or (X.ndim == 3 and X.shape[0] == c and X.shape[1:] == (h, w) and c > 1):
            X = X[None]  # a single image
        try:
            X = to_nchw(X, "")
        except DataFormatError as exc:
            raise PredictInputError(str(exc)) from None
        if X.shape[1] != c:
            X = convert_channels(X, c)
        if self.value_range is not None and X.dtype == np.uint8:
            X = X.astype(np.uint16)  # 8-bit values beside 16-bit ones, as training decoded them
        elif self.value_range is None and X.dtype == np.uint16:
            raise PredictInputError("these images have more than 8 bits (uint16), but the model "
                                    "was trained on 8-bit images; convert them to 8 bits")
        return resize(X, (h, w))

    def image_files(self, path: Path) -> tuple[ImageFiles, list]:
        """A folder's image files (sorted) or one file, checked as training checked them and to
        be decoded as it decoded them → (the readable ones, [(file, reason)] of the others)."""
        if not path.exists():
            raise SourceNotFoundError(f"no such file or folder: {path}")
        files = list_image_files(path) if path.is_dir() else [path]
        if not files:
            raise PredictInputError(f"{path} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        headers, failed = check_files(files)
        kept = [f for f in files if f in headers]
        root = path if path.is_dir() else path.parent
        return ImageFiles(kept, 3 if self.shape[0] == 3 else 1, self.shape[1:], root,
                          self.decode if self.decode != "uint8" else np.uint8), failed

    def input_spec(self) -> dict[str, Any]:
        return {"n_features": self.shape[0], "n_dense": self.shape[0], "modality": "image",
                "shape": tuple(self.shape)}

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "mean": self.mean, "std": self.std,
                "unit_range": self.unit_range, "decode": self.decode,
                "value_range": list(self.value_range) if self.value_range else None}

    def to_spec(self) -> dict[str, Any]:
        """Everything another language needs to turn a raw image into the network's input (the
        `preprocess` part of an export's preprocess.json, deploy/export.py), in the order
        `read` and `standardise` apply it."""
        c, h, w = self.shape
        steps = [
            "decode the image file to integers (8-bit; 16-bit files as 16-bit), or take the "
            "array as it is; lay it out channels first: [C, H, W]",
            f"channels to {c}: grayscale repeated into 3 (RGB order), RGB(A) to gray by luma "
            "0.299 R + 0.587 G + 0.114 B rounded, RGBA to RGB by dropping alpha",
            f"resize to {h}x{w} when the size differs: bilinear with antialiasing, "
            "align_corners false (torch.nn.functional.interpolate), integers rounded and "
            "clipped back to their type",
        ]
        if self.value_range is not None:
            lo, hi = self.value_range
            steps.append(f"to 8 bits: round((x - {lo}) * 255 / {hi - lo}), clipped to 0-255")
        steps += [
            "8-bit values divided by 255; floating-point images taken as they are",
            "per channel c: (x - mean[c]) / std[c], as float32",
        ]
        return {"input_layout": "[N, C, H, W] float32, channels first (NCHW)",
                "channels": c, "height": h, "width": w,
                "channel_order": "RGB" if c == 3 else "gray" if c == 1 else f"{c} channels",
                "decode": self.decode, "value_range": list(self.value_range) if self.value_range else None,
                "unit_range": self.unit_range, "scale": 1 / 255 if self.unit_range else 1.0,
                "mean": self.mean, "std": self.std,
                "resize": {"mode": "bilinear", "antialias": True, "align_corners": False},
                "steps": [f"{i}. {step}" for i, step in enumerate(steps, 1)]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImagePreprocessor:
        from deepfit.core.run_checks import finite_numbers

        pre, where = cls(), "model.json's preprocessor"
        shape = d.get("shape")
        if not (isinstance(shape, list) and len(shape) == 3 and all(
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100_000 for v in shape)):
            raise RunDirError(f"{where}'s 'shape' is {str(shape)[:60]!r}, not [channels, height, width]")
        pre.shape = tuple(shape)
        pre.mean = finite_numbers(d.get("mean"), f"{where}'s 'mean'")
        pre.std = finite_numbers(d.get("std"), f"{where}'s 'std'", positive=True)
        pre.unit_range = bool(d.get("unit_range", True))
        pre.decode = d.get("decode", "uint8")
        pre.value_range = tuple(d["value_range"]) if d.get("value_range") else None
        return pre


LOW_Q, HIGH_Q = 0.001, 0.999  # the share of training pixels below the range's ends


def training_range(chunks: Any, notes: Notes) -> tuple[int, int]:
    """The range (lo, hi) of uint16 training images' pixels: their 0.1th and 99.9th percentiles,
    from one histogram of the 65,536 values (exact, a chunk at a time). Noted."""
    counts = np.zeros(65536, dtype=np.int64)
    for chunk in chunks:
        counts += np.bincount(np.asarray(chunk, dtype=np.uint16).ravel(), minlength=65536)
    cdf = np.cumsum(counts)
    total = int(cdf[-1])
    lo = int(np.searchsorted(cdf, LOW_Q * total, side="right"))
    hi = max(int(np.searchsorted(cdf, HIGH_Q * total, side="left")), lo + 1)
    found = np.flatnonzero(counts)
    notes.decide(f"images of more than 8 bits: the training pixels hold {found[0]} to {found[-1]}; "
                 f"scaled to 8 bits by {lo} to {hi} (their {LOW_Q:.1%} to {HIGH_Q:.1%} "
                 "percentiles), saved with the model and applied at predict")
    return lo, hi


def to_eight_bits(x: torch.Tensor, value_range: tuple[int, int]) -> torch.Tensor:
    """Values scaled so that value_range spans 0-255, rounded and clipped → uint8 (same device)."""
    lo, hi = value_range
    return ((x.float() - lo) * (255.0 / (hi - lo))).round_().clamp_(0, 255).to(torch.uint8)


def _unit(X: np.ndarray) -> np.ndarray:
    """uint8 → float32 in [0, 1]; floats as they are."""
    return X.astype(np.float32) / 255.0 if X.dtype == np.uint8 else X.astype(np.float32, copy=False)


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


