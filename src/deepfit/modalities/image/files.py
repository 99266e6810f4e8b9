"""Folders of image files (one subfolder per class): decoded once into a uint8 cache when they
fit the cache budget, otherwise streamed from disk, decoded batch by batch in the DataLoader's
workers.

    list the files ─► check each (PIL open + verify) ─► channels and size ─► fits the budget?
        yes (or --loader memory): decode all once → uint8 [N, C, H, W]           (the cache)
        no  (or --loader stream): ImageFiles → FolderSource, decoded per batch   (streamed)

- Channels: 3 when any file has colour, else 1. Size: --image-size, or the files' median side.
- Orientation: as a viewer shows the image (its EXIF orientation tag applied: ImageOps.exif_transpose).
- Bit depth: files of more than 8 bits (modes I;16*, I: 16-bit PNG or TIFF) are decoded as uint16,
  the folder's other files alongside at their own values; ImagePreprocessor fits their range on
  the training split and scales them to 8 bits with it (saved, applied at predict). A folder with
  float files (mode F) is decoded as float32 and standardised as it is.
- Layout: one folder per class, or train/ val/ test/ each with class folders (modalities/image/layout.py).
- Cache budget: the decoded images take N×C×H×W bytes; they are cached when that is at most
  --cache-limit-mb, else the environment variable DEEPFIT_CACHE_LIMIT_MB, else CACHE_SHARE (5 %)
  of the memory available when the folder is read (the fast path then also holds float32 copies
  of the training and validation images, 4 bytes a value: about a quarter of it in all).
  --loader memory over the budget is a DataTooLargeError.
- Unreadable files: every file is checked up front with PIL's open + verify (its header, and for
  PNG every chunk's checksum; nothing is decoded, so the check is cheap even when streaming).
  A file that fails is skipped and named, with the count, in the log and in config.json
  (data.skipped_files, data.skipped_count), and by `deepfit check` (the "unreadable_files" finding). With the cache, a file that passes the check but
  fails to decode is skipped and named as well; streamed, such a file is found only when a batch
  reaches it, and the run stops with an ImageDecodeError that names it (a check that decodes
  everything would cost what streaming saves).
- Both paths decode a file with the same function (`decode_file`: PIL, converted to L or RGB,
  bilinear resize), so their pixels, and the weights trained on them, are identical. PIL rather
  than torchvision here: importing torchvision would cost every DataLoader worker seconds.
  Standardisation and augmentation happen after, on whole batches on the training device
  (ImagePreprocessor.standardise, modalities/image/augment.py), shared by both paths.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepfit.core.notes import Notes
from deepfit.core.words import plural
from deepfit.data.dataset import Streamed
from deepfit.errors import DataFormatError, ImageDecodeError
from deepfit.modalities.image.cache import stream_folder
from deepfit.modalities.image.layout import find_layout, part_rows

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # more than 8 bits: decoded as uint16
FLOAT_MODES = ("F",)  # decoded as float32
ORIENTATION = 0x0112  # the EXIF orientation tag; 1 is upright
MAX_DEFAULT_SIZE = 224
CHUNK = 256  # images decoded (and summed, for the mean and std) at a time
SHOWN = 20  # skipped files named in a warning, at most (config.json names them all)


def list_image_files(path: Path) -> list[Path]:
    """Image files under `path` (by suffix, any case), sorted; hidden files left out."""
    return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                  and p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))


class ImageFiles(Streamed):
    """Image files read lazily: an array-like of shape [N, C, H, W] (uint8) whose rows can be
    taken (`files[rows]` → ImageFiles) and decoded in chunks, never all at once."""

    ndim = 4

    def __init__(self, files: list[Path], channels: int, size: tuple[int, int],
                 root: Path | None = None, dtype: Any = np.uint8) -> None:
        self.files, self.channels, self.size, self.root = list(files), channels, tuple(size), root
        self.dtype = np.dtype(dtype)  # uint8; uint16 (a folder of >8-bit files); float32 (mode F)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, rows: Any) -> ImageFiles:
        picked = (self.files[rows] if isinstance(rows, slice)
                  else [self.files[int(i)] for i in np.asarray(rows).reshape(-1)])
        return ImageFiles(picked, self.channels, self.size, self.root, self.dtype)

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError("ImageFiles are decoded in chunks (.chunks(), .decode()), not as one array")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.files), self.channels, *self.size)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def name(self, f: Path) -> str:
        return str(f.relative_to(self.root)) if self.root and f.is_relative_to(self.root) else str(f)

    def chunks(self, size: int = CHUNK, failed: list[tuple[int, str, str]] | None = None) -> Iterator[np.ndarray]:
        """The images in order, uint8 [≤ size, C, H, W] at a time (decoded by threads). A file
        that fails to decode raises ImageDecodeError; with a `failed` list it is appended there
        as (row, name, why) and its image is zeros (Streamed.chunks)."""
        for i in range(0, len(self.files), size):
            part = self.files[i : i + size]
            X, _, bad = decode_images(part, self.channels, self.size, self.dtype)
            if bad and failed is None:
                raise ImageDecodeError(decode_failure(self.name(bad[0][0]), bad[0][1]))
            if bad:
                rows = {f: i + j for j, f in enumerate(part)}
                failed.extend((rows[f], self.name(f), why) for f, why in bad)
                whole = np.zeros((len(part), *X.shape[1:]), X.dtype)
                gone = {f for f, _ in bad}
                whole[[j for j, f in enumerate(part) if f not in gone]] = X
                X = whole
            yield X

    def decode(self) -> np.ndarray:
        """All of them as one uint8 [N, C, H, W] array (for a few images)."""
        parts = list(self.chunks())
        return np.concatenate(parts) if parts else np.zeros((0, self.channels, *self.size), self.dtype)

    def fingerprint(self) -> bytes:
        """The files' names and sizes (reading every byte would cost a pass over the folder)."""
        digest = hashlib.sha256(repr((self.channels, self.size)
                                     + ((self.dtype.str,) if self.dtype != np.uint8 else ())).encode())
        for f in self.files:
            digest.update(f"{self.name(f)}\0{f.stat().st_size}\0".encode())
        return digest.digest()

    def source(self, y: torch.Tensor) -> FolderSource:
        return FolderSource(self, y)


class FolderSource(torch.utils.data.Dataset):
    """A map-style dataset over image files that takes a whole batch of row numbers at once:
    source[index] → (uint8 [B, C, H, W], y[index]), decoded where it is called (a DataLoader
    worker). A file that fails to decode gives (ImageDecodeError, None) for the main process to
    raise: raised in a worker, the error would arrive wrapped in the worker's traceback."""

    def __init__(self, images: ImageFiles, y: torch.Tensor) -> None:
        if len(images) != len(y):
            raise ValueError(f"{len(images)} images but {len(y)} targets")
        self.images, self.y = images, y

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: torch.Tensor) -> tuple[Any, Any]:
        images, arrays = self.images, []
        for row in index.tolist():
            array = decode_file(images.files[row], images.channels, images.size, images.dtype)
            if isinstance(array, str):
                return ImageDecodeError(decode_failure(images.name(images.files[row]), array)), None
            arrays.append(array)
        return torch.from_numpy(np.stack(arrays)), self.y[index]


def decode_failure(name: str, reason: str) -> str:
    return (f"cannot decode {name} ({reason}); it passed the check when the folder was read, "
            "so it was kept: remove or repair it and run again")


# ------------------------------------------------------------------ reading a folder
def read_image_folder(path: Path, image_size: int | tuple[int, int] | None, notes: Notes, *,
                      loader: str = "auto", cache_limit_mb: float | None = None,
                      ) -> tuple[np.ndarray | ImageFiles, list[str], list[str], dict[str, Any]]:
    """A folder with one subfolder of images per class, or train/ val/ test/ each with them
    (modalities/image/layout.py) → (uint8 [N, C, H, W] decoded (uint16 or float32 for a folder of
    deeper files), or ImageFiles to stream; the class name of each image; the skipped files,
    each 'name (why)'; how the files were read: {'splits': {split: rows} for a split layout,
    'folders', 'exif_rotated', 'deep' (files of more than 8 bits), 'modes', 'files': each
    image's file name relative to `path`, in row order (the audit names images by them),
    'skipped': the skipped files' names})."""
    layout = find_layout(path, IMAGE_SUFFIXES, notes)
    files = layout.files
    if not files:
        what = "no class subfolders" if not layout.classes else "no image files in its subfolders"
        raise DataFormatError(f"{path} holds {what}; an image folder is one subfolder of images "
                              f"({', '.join(IMAGE_SUFFIXES)}) per class")
    headers, skipped = check_files([f for f, _, _ in files])
    readable = [(f, label, part) for f, label, part in files if f in headers]
    if not readable:
        _warn_skipped(skipped, path, notes)
        raise DataFormatError(f"{path} holds no readable image: all {len(files)} image files "
                              f"failed to open (first: {skipped[0][0].name}: {skipped[0][1]})")
    modes = {header[0] for header in headers.values()}
    channels = 1 if modes <= set(GRAY_MODES) else 3
    dtype = decode_dtype(modes)
    h, w = hw(image_size or _median_side([header[1] for header in headers.values()]))
    stream = stream_folder(len(readable) * channels * h * w * dtype.itemsize, loader, cache_limit_mb,
                     path, notes)
    n_classes = len(layout.classes)
    notes.decide(f"{path.name}: {len(readable)} images in {n_classes} classes; modes "
                 f"{', '.join(sorted(modes))} → {'RGB' if channels == 3 else 'grayscale'}, resized "
                 f"to {h}×{w}" + ("" if image_size else " (their median side; --image-size "
                                  "to change)"))
    reading = _reading_facts(headers, modes, dtype, notes)
    if stream:
        _warn_skipped(skipped, path, notes)
        images = ImageFiles([f for f, _, _ in readable], channels, (h, w), root=path, dtype=dtype)
        kept = readable
    else:
        X, decoded, failed = decode_images([f for f, _, _ in readable], channels, (h, w), dtype)
        _warn_skipped(skipped + failed, path, notes)
        if not decoded:
            raise DataFormatError(f"{path} holds no readable image: every file failed to decode")
        found = {f: (label, part) for f, label, part in readable}
        images, kept, skipped = X, [(f, *found[f]) for f in decoded], skipped + failed
    reading.update(files=[_name(f, path) for f, _, _ in kept],
                   skipped=[_name(f, path) for f, _ in skipped])
    if layout.folders:
        reading.update(splits=part_rows([part for _, _, part in kept]), folders=layout.folders)
    return images, [label for _, label, _ in kept], _named(skipped, path), reading


def decode_dtype(modes: set[str]) -> np.dtype:
    """How a folder whose files have these modes is decoded: uint8; uint16 when any file has
    more than 8 bits; float32 when any is a float image."""
    if modes & set(FLOAT_MODES):
        return np.dtype(np.float32)
    return np.dtype(np.uint16 if modes & set(DEEP_MODES) else np.uint8)


def _reading_facts(headers: dict, modes: set[str], dtype: np.dtype, notes: Notes) -> dict[str, Any]:
    """What decoding does beyond resizing (noted): rotations by EXIF tag, deeper files."""
    rotated = sum(1 for header in headers.values() if header[2] not in (None, 1))
    deep = sum(1 for header in headers.values() if header[0] in DEEP_MODES + FLOAT_MODES)
    if rotated:
        notes.decide(f"{plural(rotated, 'image', 'carry')} an EXIF orientation tag: turned as a viewer shows "
                     "them (ImageOps.exif_transpose)")
    if dtype == np.uint16:
        notes.decide(f"{plural(deep, 'image')} of more than 8 bits (modes {', '.join(sorted(modes & set(DEEP_MODES)))}): "
                     "decoded as 16-bit values, scaled to 8 bits by the training split's range")
        if deep < len(headers):
            notes.warn(f"{plural(len(headers) - deep, '8-bit image')} beside {deep} of more than 8 bits: "
                       "all are scaled by one range, so the 8-bit ones come out dark; give the "
                       "folder one bit depth")
    elif dtype == np.float32:
        notes.decide(f"{plural(deep, 'image', 'hold')} floats (mode F): decoded as float32 values, "
                     "standardised as they are (no 8-bit step)")
    return {"exif_rotated": rotated, "deep": deep, "modes": sorted(modes), "dtype": dtype.name}


def check_files(files: list[Path]) -> tuple[dict[Path, tuple[str, tuple[int, int], int | None]], list]:
    """Each file's (mode, size, EXIF orientation or None) from its header, after PIL's verify
    (by threads: it is reading); failures as (file, reason)."""
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(_check, files))
    headers = {f: r for f, r in zip(files, results) if not isinstance(r, str)}
    return headers, [(f, r) for f, r in zip(files, results) if isinstance(r, str)]


def _check(path: Path) -> tuple[str, tuple[int, int], int | None] | str:
    from PIL import Image

    try:
        with Image.open(path) as im:
            found = (im.mode, im.size)
            im.verify()
            return (*found, _orientation(im))
    except Exception as exc:  # PIL raises many kinds for a bad file
        return _reason(exc, path)


def _orientation(im: Any) -> int | None:
    """The EXIF orientation tag from the header (after verify: it reads no pixels), or None."""
    try:
        return im.getexif().get(ORIENTATION)
    except Exception:  # an unreadable EXIF block: decoding then ignores it too
        return None


def decode_images(files: list[Path], channels: int, size: int | tuple[int, int],
                  dtype: Any = np.uint8) -> tuple[np.ndarray, list[Path], list]:
    """Decode files into [N, channels, H, W] of `dtype` (threads: PIL releases the GIL while it
    decodes) → (images, the files decoded, [(file, reason)] of those that failed)."""
    size = hw(size)
    workers = min(8, os.cpu_count() or 1, max(1, len(files)))
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda f: decode_file(f, channels, size, dtype), files))
    kept = [f for f, r in zip(files, results) if not isinstance(r, str)]
    failed = [(f, r) for f, r in zip(files, results) if isinstance(r, str)]
    arrays = [r for r in results if not isinstance(r, str)]
    X = np.stack(arrays) if arrays else np.zeros((0, channels, *size), dtype)
    return X, kept, failed


def decode_file(path: Path, channels: int, size: tuple[int, int],
                dtype: Any = np.uint8) -> np.ndarray | str:
    """One image as [channels, H, W] of `dtype`, turned as its EXIF tag says, or the reason it
    could not be read. uint8: L or RGB (a >8-bit file keeps its top 8 bits: only a run trained
    on 8-bit files decodes one so); uint16 or float32: a deep file at its own values, any other
    at its 0-255 ones (bilinear resize of the values, one channel at a time)."""
    from PIL import Image, ImageOps

    dtype = np.dtype(dtype)
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if dtype != np.uint8:
                return _decode_deep(im, channels, size, dtype)
            if im.mode.startswith("I;16"):  # 16-bit grayscale: keep the top 8 bits
                im = Image.fromarray((np.asarray(im, dtype=np.uint16) >> 8).astype(np.uint8))
            im = im.convert("RGB" if channels == 3 else "L")
            im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(im, dtype=np.uint8)
    except Exception as exc:
        return _reason(exc, path)
    return array.transpose(2, 0, 1) if array.ndim == 3 else array[None]


def _decode_deep(im: Any, channels: int, size: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    from PIL import Image

    grey = im.mode in DEEP_MODES + FLOAT_MODES
    if grey:
        planes = [np.asarray(im, dtype=np.float32)]
    else:
        array = np.asarray(im.convert("RGB" if channels == 3 else "L"), dtype=np.float32)
        planes = [array] if array.ndim == 2 else [array[..., c] for c in range(3)]
    out = np.stack([np.asarray(Image.fromarray(p).resize((size[1], size[0]), Image.Resampling.BILINEAR))
                    for p in planes])  # float32 planes: PIL's mode F
    if grey and channels == 3:
        out = np.repeat(out, 3, axis=0)
    if dtype == np.uint16:
        return np.clip(np.rint(out), 0, 65535).astype(np.uint16)
    return out.astype(np.float32, copy=False)


def hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _reason(exc: BaseException, path: Path) -> str:
    """Why `path` could not be read, without its path (the file is named beside the reason)."""
    try:
        if path.stat().st_size == 0:
            return "empty: 0 bytes"
    except OSError:
        pass
    text = " ".join(str(exc).replace(f"'{path}'", "").replace(str(path), "").split())
    if text.startswith("cannot identify image file"):  # PIL knows no image format in its bytes
        return "not an image: no format PIL reads"
    return (text or type(exc).__name__)[:120]


def _name(f: Path, root: Path) -> str:
    return str(f.relative_to(root) if f.is_relative_to(root) else f)


def _named(skipped: list, root: Path) -> list[str]:
    return [f"{_name(f, root)} ({why})" for f, why in skipped]


def skipped_message(named: list[str]) -> str:
    """The warning of a folder's unreadable files (each 'name (why)'), the first SHOWN named."""
    more = f"; … ({len(named)} in all)" if len(named) > SHOWN else ""
    return f"skipped {plural(len(named), 'unreadable image file')}: {'; '.join(named[:SHOWN])}{more}"


def _warn_skipped(skipped: list, root: Path, notes: Notes) -> None:
    if skipped:
        notes.warn(skipped_message(_named(skipped, root)))


def _median_side(sizes: list[tuple[int, int]]) -> int:
    side = int(np.median([max(w, h) for w, h in sizes]))
    return max(1, min(MAX_DEFAULT_SIZE, side))
