"""Images: sources (a folder of class subfolders, an .npz of arrays, the bundled digits) and the
preprocessor that normalises them per channel.

A source is images when (the rule `load_images` applies, before the tabular and sequence ones):
    a directory                                   always (one subfolder per class)
    an .npz, or arrays with y, whose X has
        ndim 4: [N, H, W, C] or [N, C, H, W]      always (C in 1, 3, 4; [N, C, H, W] when both fit)
        ndim 3: [N, H, W]                         only when an image model is asked for (else the
                                                  rows are sequences, [N, T, C])
    the bundled `digits`                          only when an image model is asked for: [N, 1, 8, 8]
Images become one uint8 array [N, C, H, W] (uint16 for images of more than 8 bits, scaled to 8 bits
by the training range in ImagePreprocessor; float32 when the source holds other values), decoded
once. A folder's files of any size and mode are resized to `image_size` (default: their median
side) and converted to one channel count (3 when any of them has colour, else 1); unreadable or
corrupt files are skipped and each is named (logged, and in config.json). A folder too large for
the memory cache is streamed instead: X is then an `ImageFiles`, decoded batch by batch
(data/image_files.py has the rules)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepfit.core.notes import Notes
from deepfit.data.image_files import (
    CHUNK,
    GRAY_MODES,
    IMAGE_SUFFIXES,
    ImageFiles,
    check_files,
    hw,
    list_image_files,
    read_image_folder,
)
from deepfit.data.preprocessors import register_preprocessor
from deepfit.errors import DataFormatError, PredictInputError, SettingsError, SourceNotFoundError

__all__ = ["GRAY_MODES", "IMAGE_SUFFIXES", "ImageFiles", "ImagePreprocessor", "load_images"]


def load_images(source: Any, y: Any, *, modality: str | None, image_size: int | tuple[int, int] | None,
                notes: Notes, loader: str = "auto", cache_limit_mb: float | None = None,
                ) -> tuple[np.ndarray | ImageFiles, pd.Series, str, list[str] | None, dict | None] | None:
    """(X [N, C, H, W], the raw labels, the source's name, a folder's skipped files or None,
    how a folder's files were read or None: read_image_folder's last item, with its own splits
    for a train/ val/ test/ folder) when `source` holds images by the rule above, else None.
    `modality` is that of the model
    asked for (None: not named); `image_size`: a side, or (H, W); `loader` and `cache_limit_mb`:
    whether a folder is cached or streamed (data/image_files.py)."""
    from deepfit.data.sources import _npz_arrays  # here: sources imports this module

    wants_images = modality == "image"
    if modality not in (None, "image"):
        if isinstance(source, (str, Path)) and Path(source).is_dir():
            raise SettingsError(f"{source} is a folder of images, but the model asked for takes "
                                f"{modality} data; use an image model (cnn, resnet18, transfer:<name>)")
        return None
    if y is not None:
        X = np.asarray(source) if not isinstance(source, pd.DataFrame) else None
        if X is None or not (X.ndim == 4 or (X.ndim == 3 and wants_images)):
            return None
        X = _fit_size(to_nchw(X, ""), image_size, notes)
        return X, pd.Series(np.asarray(y), name="target"), "arrays", None, None
    if not isinstance(source, (str, Path)):
        return None
    path = Path(source)
    if path.is_dir():
        X, labels, skipped, reading = read_image_folder(path, image_size, notes, loader=loader,
                                                        cache_limit_mb=cache_limit_mb)
        return X, pd.Series(labels, name="target", dtype=object), path.name, skipped, reading
    if path.suffix.lower() == ".npz" and path.is_file():
        ndim = _npz_ndim(path, "X")
        if not (ndim == 4 or (ndim == 3 and wants_images)):
            return None  # the other readers handle it (and name what is wrong with it)
        arrays = _npz_arrays(path, need=("X", "y"))
        X = arrays["X"]
        if arrays["y"].ndim != 1 or len(arrays["y"]) != len(X):
            raise DataFormatError(f"{path}: y must hold one label per image, got shape "
                                  f"{arrays['y'].shape} for {len(X)} images")
        X = _fit_size(to_nchw(X, f"{path}: "), image_size, notes)
        return X, pd.Series(arrays["y"], name="target"), path.stem, None, None
    if str(source) == "digits" and wants_images and not path.exists():
        return _fit_size(digits_images(), image_size, notes), _digits_labels(), "digits", None, None
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
    return X[rows], y.iloc[rows].reset_index(drop=True), kept


def _npz_ndim(path: Path, key: str) -> int | None:
    """The number of dimensions of one array of an .npz, from its header (the data stay on disk)."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)(f)
            return len(header[0])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def digits_images() -> np.ndarray:
    """scikit-learn's 8×8 digits as uint8 [1797, 1, 8, 8] (its 17 grey levels spread over 0-255)."""
    from sklearn.datasets import load_digits

    images = load_digits().images  # [N, 8, 8], values 0-16
    return np.rint(images * (255 / 16)).astype(np.uint8)[:, None]


def _digits_labels() -> pd.Series:
    from sklearn.datasets import load_digits

    return pd.Series(load_digits().target, name="target")


def to_nchw(X: np.ndarray, where: str) -> np.ndarray:
    """[N, H, W], [N, H, W, C] or [N, C, H, W] (C in 1, 3, 4) → [N, C, H, W]: uint16 as it is
    (images of more than 8 bits: ImagePreprocessor scales them by the training range), as uint8
    when the values are whole numbers in 0-255, else float32."""
    if X.ndim == 3:
        X = X[:, None]
    elif X.ndim == 4:
        channels_first, channels_last = X.shape[1] in (1, 3, 4), X.shape[3] in (1, 3, 4)
        if channels_last and not channels_first:
            X = X.transpose(0, 3, 1, 2)
        elif not channels_first:
            raise DataFormatError(f"{where}X has shape {list(X.shape)}: images need 1, 3 or 4 "
                                  "channels, as [N, H, W, C] or [N, C, H, W]")
    else:
        raise DataFormatError(f"{where}X has shape {list(X.shape)}; images are [N, H, W], "
                              "[N, H, W, C] or [N, C, H, W]")
    if X.dtype.kind not in "biuf":
        raise DataFormatError(f"{where}images must be numbers, not {X.dtype}")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        bad = np.flatnonzero(~np.isfinite(X).all(axis=(1, 2, 3)))
        shown = ", ".join(map(str, bad[:10])) + (f", … ({len(bad)} in all)" if len(bad) > 10 else "")
        raise DataFormatError(f"{where}the images hold NaN or infinite values (image(s) {shown}); "
                              "drop or repair them")
    if X.dtype in (np.uint8, np.uint16):
        return np.ascontiguousarray(X)
    if X.dtype.kind in "biu" and X.size and X.min() >= 0 and X.max() <= 255:
        return np.ascontiguousarray(X, dtype=np.uint8) * (255 if X.dtype.kind == "b" else 1)
    return np.ascontiguousarray(X, dtype=np.float32)


def resize(X: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[N, C, H, W] resized to `size` (bilinear, antialiased), in the same dtype."""
    if X.shape[2:] == tuple(size):
        return X
    out = torch.nn.functional.interpolate(torch.from_numpy(X).float(), size=tuple(size),
                                          mode="bilinear", antialias=True, align_corners=False)
    if X.dtype in (np.uint8, np.uint16):
        top = float(np.iinfo(X.dtype).max)
        return out.round_().clamp_(0, top).numpy().astype(X.dtype)
    return out.numpy()


def _fit_size(X: np.ndarray, image_size: int | tuple[int, int] | None, notes: Notes) -> np.ndarray:
    if image_size is None or X.shape[2:] == hw(image_size):
        return X
    h, w = hw(image_size)
    notes.decide(f"images resized from {X.shape[2]}×{X.shape[3]} to {h}×{w} (--image-size)")
    return resize(X, (h, w))


# ------------------------------------------------------------------ preprocessing
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
            X = _convert_channels(X, c)
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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImagePreprocessor:
        pre = cls()
        pre.shape, pre.mean, pre.std = tuple(d["shape"]), list(d["mean"]), list(d["std"])
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


def _convert_channels(X: np.ndarray, channels: int) -> np.ndarray:
    have = X.shape[1]
    if have == 1 and channels == 3:
        return np.repeat(X, 3, axis=1)
    if have in (3, 4) and channels == 1:
        luma = np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), X[:, :3].astype(np.float32), (0, 1))
        return (np.rint(luma).astype(X.dtype) if X.dtype.kind == "u" else luma)[:, None]
    if have == 4 and channels == 3:
        return X[:, :3]
    raise PredictInputError(f"the model takes {channels}-channel images, these have {have}")


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


register_preprocessor("image", ImagePreprocessor)
