"""torchvision's named datasets, `mnist`, `fashion-mnist` and `cifar10`, read from a data root.

The files are those torchvision downloads, in its own layout, so `--data-root` may point at an
existing torchvision download:
    ROOT/MNIST/raw/{train-images-idx3-ubyte, train-labels-idx1-ubyte,
                    t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte}     (or each with .gz)
    ROOT/FashionMNIST/raw/…                                             (the same names)
    ROOT/cifar-10-batches-py/{data_batch_1 … data_batch_5, test_batch[, batches.meta]}
    or ROOT/cifar-10-batches-bin/{data_batch_1.bin … data_batch_5.bin, test_batch.bin}
The data root is `--data-root`, else $DEEPFIT_DATA, else ./data (where torchvision's tutorials
put it). `--download` fetches missing files with torchvision; without it, missing files are a
named error that says where to put them. The idx files are parsed here with numpy and CIFAR's
pickles read with a restricted unpickler (data/safe_unpickle.py): nothing is unpickled unsafely.

Each set comes with its official test set: training uses it as the test split and carves the
validation split from the training images (runs/prepare.py); as a held-out source (`--test mnist`,
`deepfit evaluate RUN mnist`) a name means its test set. Images are uint8 [N, 1, 28, 28] or
[N, 3, 32, 32]; asked for a tabular model, they are flattened into pixel columns.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfit.core.notes import Notes
from deepfit.data.dataset import Dataset
from deepfit.data.safe_unpickle import safe_load
from deepfit.data.targets import check_target, resolve_task
from deepfit.errors import (
    DataFormatError,
    DatasetFilesMissing,
    DownloadFailed,
    SettingsError,
)
from deepfit.modalities.image.arrays import fit_size

DEFAULT_ROOT = "data"
ROOT_ENV = "DEEPFIT_DATA"
IDX_TYPES = {0x08: np.uint8}  # MNIST's files hold unsigned bytes; other idx types are not images
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class NamedSet:
    name: str  # deepfit's name (the run's name)
    folder: str  # torchvision's folder under the root
    torchvision: str  # the torchvision.datasets class that downloads it
    classes: tuple[Any, ...]


SETS = {
    "mnist": NamedSet("mnist", "MNIST", "MNIST", tuple(range(10))),
    "fashionmnist": NamedSet("fashion-mnist", "FashionMNIST", "FashionMNIST", FASHION_CLASSES),
    "cifar10": NamedSet("cifar10", "cifar-10-batches-py", "CIFAR10", CIFAR_CLASSES),
}
NAMES = tuple(s.name for s in SETS.values())


def named_set(source: Any) -> NamedSet | None:
    """The torchvision dataset a source names (any case; fashion-mnist, fashion_mnist and
    fashionmnist alike), or None. A file or folder of that name in the working directory wins."""
    if not isinstance(source, str) or "/" in source or Path(source).exists():
        return None
    return SETS.get(source.lower().replace("-", "").replace("_", "").replace(" ", ""))


def data_root(root: str | os.PathLike | None) -> Path:
    return Path(root or os.environ.get(ROOT_ENV) or DEFAULT_ROOT).expanduser()


def load_named(spec: NamedSet, *, root: str | None, download: bool, held_out: bool,
               modality: str | None, image_size: int | None, task: str | None,
               notes: Notes):
    """The set as a Dataset: the training images with the official test set attached as
    `.test`; held out, the test set alone."""
    if modality not in (None, "image", "tabular"):
        raise SettingsError(f"{spec.name} holds images; the model asked for takes {modality} data")
    base = data_root(root)
    parts = read_files(spec, base, download, notes)
    classes = np.array(spec.classes, dtype=np.int64 if spec.name == "mnist" else object)
    datasets, wanted = {}, ("test",) if held_out else ("train", "test")
    for part in wanted:
        images, labels = parts[part]
        images = fit_size(images, image_size, notes)
        X = images if modality != "tabular" else _pixel_columns(images)
        y = pd.Series(classes[labels], name="target")
        if part == wanted[0]:
            task = resolve_task(y, "target", task, notes)
        check_target(y, "target", task, held_out=part == "test")
        datasets[part] = Dataset(X, y, spec.name, "target", task,
                                 modality="image" if modality != "tabular" else "tabular")
    if held_out:
        return datasets["test"]
    datasets["train"].test = datasets["test"]
    if modality == "tabular":
        notes.decide(f"{spec.name}: images flattened into {X.shape[1]} pixel columns for a "
                     "tabular model")
    return datasets["train"]


def _pixel_columns(images: np.ndarray) -> pd.DataFrame:
    flat = images.reshape(len(images), -1)
    return pd.DataFrame(flat, columns=[f"pixel{i}" for i in range(flat.shape[1])])


def read_files(spec: NamedSet, base: Path, download: bool,
               notes: Notes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train': (images, label codes), 'test': …} from the files under `base`; missing files
    are downloaded with `download`, else a DatasetFilesMissing that names them."""
    where, missing = _locate(spec, base)
    if missing and download:
        _download(spec, base, notes)
        where, missing = _locate(spec, base)
    if missing:
        raise DatasetFilesMissing(
            f"{spec.name}: missing {', '.join(missing)} in {where.resolve()}; put torchvision's "
            f"files there or add --download to fetch them (the data root is --data-root, else "
            f"${ROOT_ENV}, else ./{DEFAULT_ROOT})")
    parts = _read_cifar(where) if spec.name == "cifar10" else _read_mnist(where)
    for part, (_, labels) in parts.items():
        bad = (labels >= len(spec.classes)) | (labels < 0)
        if bad.any():
            raise DataFormatError(f"{where}: the {part} labels hold {int(labels[bad][0])}, "
                                  f"outside the {len(spec.classes)} classes of {spec.name}")
    sizes = {part: len(labels) for part, (_, labels) in parts.items()}
    notes.decide(f"{spec.name}: read from {where.resolve()} ({sizes['train']} training and "
                 f"{sizes['test']} test images)")
    return parts


def _locate(spec: NamedSet, base: Path) -> tuple[Path, list[str]]:
    """The folder the files are read from and the names missing from it (none: all there)."""
    if spec.name == "cifar10":
        py, binary = base / "cifar-10-batches-py", base / "cifar-10-batches-bin"
        py_missing = [n for n in (*CIFAR_TRAIN, "test_batch") if not (py / n).is_file()]
        bin_missing = [n + ".bin" for n in (*CIFAR_TRAIN, "test_batch")
                       if not (binary / (n + ".bin")).is_file()]
        if py_missing and not bin_missing:
            return binary, []
        return py, py_missing
    raw = base / spec.folder / "raw"
    names = [n for pair in MNIST_FILES.values() for n in pair]
    missing = [n for n in names if _idx_path(raw, n) is None]
    if missing:
        missing = [f"{n} (or {n}.gz)" for n in missing]
    return raw, missing


def _download(spec: NamedSet, base: Path, notes: Notes) -> None:
    """Fetch the set with torchvision into `base` (its layout, its checksums)."""
    import torchvision.datasets as tvd
    from torchvision.datasets.utils import download_and_extract_archive

    notes.decide(f"{spec.name}: downloading with torchvision into {base}")
    try:
        base.mkdir(parents=True, exist_ok=True)
        if spec.name == "cifar10":  # the archive only: torchvision's CIFAR10 would unpickle it
            download_and_extract_archive(tvd.CIFAR10.url, str(base), filename=tvd.CIFAR10.filename,
                                         md5=tvd.CIFAR10.tgz_md5)
        else:
            getattr(tvd, spec.torchvision)(str(base), train=True, download=True)
    except Exception as exc:  # no network, a server or checksum error: many types
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DownloadFailed(f"could not download {spec.name} into {base}: {reason}; without a "
                             f"network, copy torchvision's files there instead") from None


# ------------------------------------------------------------------ MNIST and Fashion-MNIST
def _idx_path(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_mnist(raw: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    parts = {}
    for part, (images_name, labels_name) in MNIST_FILES.items():
        images = read_idx(_idx_path(raw, images_name), ndim=3)
        labels = read_idx(_idx_path(raw, labels_name), ndim=1)
        if len(images) != len(labels):
            raise DataFormatError(f"{raw}: {images_name} holds {len(images)} images but "
                                  f"{labels_name} {len(labels)} labels")
        parts[part] = images[:, None], labels.astype(np.int64)
    return parts


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx file (big-endian: two zero bytes, a type byte, a dimension count, the sizes, the
    data), gzipped or not, as a uint8 array of `ndim` dimensions."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataFormatError(f"cannot read {path}: {exc}") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_TYPES:
        raise DataFormatError(f"{path} is not an idx file of bytes (its magic number is "
                              f"{raw[:4].hex() or 'missing'}, expected 0000080{ndim:x})")
    if raw[3] != ndim:
        raise DataFormatError(f"{path} holds {raw[3]}-dimensional data, expected {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path} is cut short in its header")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    size = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != size:
        raise DataFormatError(f"{path} declares {'×'.join(map(str, dims))} = {size} values but "
                              f"holds {len(raw) - header}")
    return np.frombuffer(raw, IDX_TYPES[raw[2]], offset=header).reshape(dims)


# ------------------------------------------------------------------ CIFAR-10
def _read_cifar(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    read = _cifar_bin_batch if folder.name.endswith("-bin") else _cifar_py_batch
    suffix = ".bin" if folder.name.endswith("-bin") else ""
    parts = {}
    for part, names in (("train", CIFAR_TRAIN), ("test", ("test_batch",))):
        batches = [read(folder / (n + suffix)) for n in names]
        parts[part] = (np.concatenate([b[0] for b in batches]),
                       np.concatenate([b[1] for b in batches]))
    return parts


def _cifar_py_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One python-version batch: a pickled dict of 'data' (uint8 [N, 3072]: the red, green and
    blue planes, each 32×32 row by row) and 'labels' (N ints)."""
    batch = safe_load(path)
    if not isinstance(batch, dict):
        raise DataFormatError(f"{path} holds a {type(batch).__name__}, not a CIFAR batch (a dict)")
    batch = {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataFormatError(f"{path} is not a CIFAR-10 batch: it needs 'data' (an array) and "
                              f"'labels'; it has {', '.join(map(str, batch)) or 'nothing'}")
    labels = np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataFormatError(f"{path}: 'data' is {data.dtype} {list(data.shape)}, expected "
                              "uint8 [N, 3072]")
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise DataFormatError(f"{path}: 'labels' must be {len(data)} whole numbers, one per image")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _cifar_bin_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One binary-version batch: records of a label byte and 3072 pixel bytes."""
    raw = np.fromfile(path, np.uint8)
    if raw.size == 0 or raw.size % 3073:
        raise DataFormatError(f"{path} holds {raw.size} bytes, not whole records of 3073 "
                              "(a label byte and 3072 pixels)")
    records = raw.reshape(-1, 3073)
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), records[:, 0].astype(np.int64)
