"""torchvision's named datasets (modalities/image/named_sets.py) on tiny files written here in their
on-disk formats: MNIST's idx files (plain and .gz), CIFAR-10's pickled and binary batches. The
pickles are read by a restricted unpickler (data/safe_unpickle.py); planted ones run nothing."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

import deepfit
from deepfit.cli import main
from deepfit.errors import (
    DataFormatError,
    DatasetFilesMissing,
    DownloadFailed,
    TargetError,
    UnsafeFileError,
)
from deepfit.modalities import load_source
from deepfit.modalities.image.named_sets import named_set

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]
MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


def _idx(array: np.ndarray) -> bytes:
    """An array in the idx format: 0, 0, type 0x08 (bytes), ndim, big-endian sizes, data."""
    array = np.asarray(array, np.uint8)
    return (struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.tobytes())


def _digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n 28×28 images of 10 classes, each class a bright 5×5 square at its own place."""
    y = np.arange(n) % 10
    X = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(y):
        r, c = divmod(int(k), 4)
        X[i, 2 + 7 * r: 7 + 7 * r, 2 + 7 * c: 7 + 7 * c] = 250
    return X, y


def write_mnist(root: Path, folder: str = "MNIST", n_train: int = 100, n_test: int = 20,
                gz: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    (X, y), (X_test, y_test) = _digits(n_train, rng), _digits(n_test, rng)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, array in zip(MNIST_NAMES, (X, y, X_test, y_test)):
        data = _idx(array)
        if gz:
            (raw / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (raw / name).write_bytes(data)
    return {"X": X, "y": y, "X_test": X_test, "y_test": y_test}



# ------------------------------------------------------------------ MNIST
@pytest.mark.slow  # about 12 s on 2 shared cores, most of it imports (torchmetrics)
def test_mnist_trains_with_its_own_test_set_and_the_run_reloads(tmp_path):
    written = write_mnist(tmp_path / "data")
    run = deepfit.train("mnist", data_root=tmp_path / "data", epochs=2, batch_size=16,
                        widths=(8, 16), report=False, progress=False, threads=1,
                        out=tmp_path / "run")
    data = run.config["data"]
    assert run.config["model"]["name"] == "cnn" and data["modality"] == "image"
    assert data["shape"] == [100, 1, 28, 28]
    # the 20 test images are the test split; validation is carved (stratified) from the 100
    assert data["split_sizes"] == {"train": 85, "val": 15, "test": 20}
    assert sorted(data["class_counts"].values()) == [8] * 5 + [9] * 5
    assert run.metrics["n"] == 20
    assert data["data_root"] == str(tmp_path / "data") and data["download"] is False
    # the metrics are those of the written test images, scored by the reloaded run
    loaded = deepfit.load(run.path)
    images = written["X_test"][:, None]
    assert (loaded.predict(images) == run.predict(images)).all()
    accuracy = float((loaded.predict(images) == written["y_test"]).mean())
    assert run.metrics["accuracy"] == pytest.approx(accuracy)
    assert deepfit.evaluate(run.path, "MNIST")["accuracy"] == pytest.approx(accuracy)


@pytest.mark.parametrize("gz", [False, True])
def test_the_idx_files_read_exactly_plain_or_gzipped(tmp_path, gz):
    written = write_mnist(tmp_path, "FashionMNIST", n_train=30, n_test=10, gz=gz, seed=1)
    data = load_source("Fashion_MNIST", data_root=tmp_path)
    assert data.name == "fashion-mnist" and data.task == "classification" and data.modality == "image"
    assert data.X.dtype == np.uint8 and data.X.shape == (30, 1, 28, 28)
    assert (data.X[:, 0] == written["X"]).all() and (data.test.X[:, 0] == written["X_test"]).all()
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
             "Bag", "Ankle boot"]
    assert list(data.y) == [names[k] for k in written["y"]]
    assert list(data.test.y) == [names[k] for k in written["y_test"]]
    held_out = load_source("fashionmnist", data_root=tmp_path, held_out=True)
    assert (held_out.X[:, 0] == written["X_test"]).all() and held_out.test is None
    with pytest.raises(TargetError, match="has one target"):
        load_source("fashion-mnist", data_root=tmp_path, target="label")
    flat = load_source("fashion-mnist", data_root=tmp_path, modality="tabular")
    assert flat.X.shape == (30, 784) and (flat.X.to_numpy() == written["X"].reshape(30, -1)).all()


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: b"\x00\x00\x0b\x03" + b[4:], "not an idx file of bytes"),  # type 0x0b: int16
    (lambda b: b[:-5], "declares 30×28×28 = 23520 values but holds 23515"),
    (lambda b: b"\x00\x00\x08\x02" + b[4:], "holds 2-dimensional data, expected 3"),
    (lambda b: b[:6], "cut short in its header"),
])
def test_a_malformed_idx_file_is_a_named_error(tmp_path, damage, message):
    write_mnist(tmp_path, n_train=30, n_test=10)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataFormatError, match=message) as info:
        load_source("mnist", data_root=tmp_path)
    assert str(path) in str(info.value)


def test_labels_outside_the_classes_and_mismatched_counts_are_named(tmp_path):
    write_mnist(tmp_path, n_train=30, n_test=10)
    raw = tmp_path / "MNIST" / "raw"
    (raw / "t10k-labels-idx1-ubyte").write_bytes(_idx(np.full(10, 12)))
    with pytest.raises(DataFormatError, match="test labels hold 12, outside the 10 classes"):
        load_source("mnist", data_root=tmp_path)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(_idx(np.zeros(9)))
    with pytest.raises(DataFormatError, match="holds 10 images but t10k-labels-idx1-ubyte 9 labels"):
        load_source("mnist", data_root=tmp_path)


def test_missing_files_name_the_folder_and_the_files(tmp_path, monkeypatch, capsys, keep_logging):
    write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetFilesMissing) as info:
        deepfit.train("mnist", data_root=tmp_path, epochs=1, out=tmp_path / "run")
    message = str(info.value)
    assert str((tmp_path / "MNIST" / "raw").resolve()) in message and "--download" in message
    assert "t10k-labels-idx1-ubyte (or t10k-labels-idx1-ubyte.gz)" in message
    assert "train-images" not in message and "\n" not in message
    assert not (tmp_path / "run").exists()
    # the CLI: exit 2, one line; the data root from $DEEPFIT_DATA when --data-root is not given
    monkeypatch.setenv("DEEPFIT_DATA", str(tmp_path / "empty"))
    assert main(["train", "CIFAR-10", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("deepfit: error: cifar10: missing data_batch_1")
    assert str((tmp_path / "empty" / "cifar-10-batches-py").resolve()) in err and "--download" in err


def test_download_is_a_thin_torchvision_call_and_its_failure_is_named(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    calls = []

    def fake_mnist(root, train, download):  # what torchvision leaves on disk
        calls.append((root, train, download))
        write_mnist(Path(root), n_train=30, n_test=10)

    monkeypatch.setattr(tvd, "MNIST", fake_mnist)
    with pytest.raises(DatasetFilesMissing):
        load_source("mnist", data_root=tmp_path)
    assert calls == []  # without --download nothing is fetched
    assert load_source("mnist", data_root=tmp_path, download=True).X.shape == (30, 1, 28, 28)
    assert calls == [(str(tmp_path), True, True)]
    load_source("mnist", data_root=tmp_path, download=True)
    assert len(calls) == 1  # the files are there now: no second download

    def offline(root, train, download):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://…, got:\n"
                           "<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(tvd, "FashionMNIST", offline)
    with pytest.raises(DownloadFailed, match="could not download fashion-mnist into") as info:
        load_source("fashion-mnist", data_root=tmp_path, download=True)
    assert "\n" not in str(info.value) and "name resolution" in str(info.value)


def test_cifar_downloads_the_archive_alone_which_torchvision_would_unpickle(tmp_path, monkeypatch):
    import torchvision.datasets as tvd
    import torchvision.datasets.utils as tvu

    calls = []

    def fake_archive(url, download_root, filename=None, md5=None):
        calls.append((url, download_root, filename, md5))
        write_cifar(Path(download_root), per_batch=2)

    monkeypatch.setattr(tvu, "download_and_extract_archive", fake_archive)
    assert len(load_source("cifar10", data_root=tmp_path, download=True).test) == 2
    assert calls == [(tvd.CIFAR10.url, str(tmp_path), tvd.CIFAR10.filename, tvd.CIFAR10.tgz_md5)]


def test_names_resolve_in_any_spelling_and_a_real_path_wins(tmp_path, monkeypatch):
    for spelling in ("mnist", "MNIST", "Fashion-MNIST", "fashion_mnist", "FashionMNIST", "cifar10",
                     "CIFAR-10", "cifar_10"):
        assert named_set(spelling) is not None, spelling
    assert named_set("cifar100") is None and named_set("data/mnist") is None
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist").mkdir()
    assert named_set("mnist") is None  # a folder of that name is the source


# ------------------------------------------------------------------ CIFAR-10
class _Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote CIFAR's files: bytes as Python 2 str opcodes."""

    dispatch = dict(pickle._Pickler.dispatch)  # noqa: RUF012  (pickle looks it up on the class)

    def save_bytes(self, obj):
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def _py2_pickle(obj) -> bytes:
    buffer = __import__("io").BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def write_cifar(root: Path, per_batch: int = 3, py2: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    out = {"X": [], "y": []}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img{i}.png".encode() for i in range(per_batch)]}
        blob = _py2_pickle(batch) if py2 else pickle.dumps(batch, protocol=2)
        (folder / name).write_bytes(blob)
        out["X"].append(data)
        out["y"].append(labels)
    return {"X": np.concatenate(out["X"]), "y": np.concatenate(out["y"])}


@pytest.mark.parametrize("py2", [True, False])
def test_cifar_python_batches_read_exactly_through_the_restricted_unpickler(tmp_path, py2):
    written = write_cifar(tmp_path, py2=py2)
    data = load_source("cifar10", data_root=tmp_path)
    assert data.X.shape == (15, 3, 32, 32) and data.X.dtype == np.uint8
    assert len(data.test) == 3
    # a row is the red, green and blue planes, each 32×32 row by row
    i, c, r, col = 7, 2, 5, 30
    assert data.X[i, c, r, col] == written["X"][i, c * 1024 + r * 32 + col]
    assert (data.X.reshape(15, -1) == written["X"][:15]).all()
    assert (data.test.X.reshape(3, -1) == written["X"][15:]).all()
    assert list(data.y) == [CIFAR_CLASSES[k] for k in written["y"][:15]]


def test_cifar_binary_batches_read(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    records = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        records[name] = rng.integers(0, 256, (2, 3073), dtype=np.uint8)
        records[name][:, 0] %= 10
        (folder / f"{name}.bin").write_bytes(records[name].tobytes())
    data = load_source("cifar10", data_root=tmp_path)
    assert (data.test.X.reshape(2, -1) == records["test_batch"][:, 1:]).all()
    assert (data.X[:2].reshape(2, -1) == records["data_batch_1"][:, 1:]).all()
    (folder / "test_batch.bin").write_bytes(records["test_batch"].tobytes()[:-1])
    with pytest.raises(DataFormatError, match="not whole records of 3073"):
        load_source("cifar10", data_root=tmp_path)


def _side_effect(path):  # what a planted pickle would call, were it resolved
    Path(path).write_text("ran")


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Function:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return _side_effect, (str(self.marker),)


class _Eval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w')",)


@pytest.mark.parametrize("planted", [_System, _Function, _Eval])
def test_a_planted_pickle_is_refused_and_runs_nothing(tmp_path, planted):
    write_cifar(tmp_path, per_batch=2)
    marker = tmp_path / "ran"
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    evil = {b"labels": [0, 1], b"data": planted(marker)}
    path.write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(UnsafeFileError, match="refused, nothing in it was run") as info:
        load_source("cifar10", data_root=tmp_path)
    assert str(path) in str(info.value) and not marker.exists()


def test_object_arrays_and_other_codecs_are_refused(tmp_path):
    write_cifar(tmp_path, per_batch=2)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({b"labels": [0], b"data": np.array([1, "x"], dtype=object)},
                                  protocol=2))
    with pytest.raises(UnsafeFileError, match="array of Python objects"):
        load_source("cifar10", data_root=tmp_path)
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(UnsafeFileError, match="codec 'rot13'"):
        load_source("cifar10", data_root=tmp_path)
    path.write_bytes(pickle.dumps({b"labels": [0, 1]}, protocol=2))
    with pytest.raises(DataFormatError, match="needs 'data'"):
        load_source("cifar10", data_root=tmp_path)


def test_the_readers_agree_with_torchvisions_own_on_the_same_files(tmp_path, monkeypatch):
    """The reference: torchvision's MNIST and CIFAR10 classes read the files written here (its
    CIFAR10 with plain pickle.load, fine on files this test wrote; its checksums skipped, the
    files being tiny) into the same images and labels."""
    import torchvision.datasets as tvd

    write_mnist(tmp_path, n_train=30, n_test=10, seed=4)
    write_cifar(tmp_path, per_batch=2)
    monkeypatch.setattr(tvd.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tvd.CIFAR10, "_load_meta", lambda self: None)
    for name, cls in (("mnist", tvd.MNIST), ("cifar10", tvd.CIFAR10)):
        ours = load_source(name, data_root=tmp_path)
        for data, train in ((ours, True), (ours.test, False)):
            theirs = cls(str(tmp_path), train=train)
            expected = np.asarray(theirs.data)  # MNIST [N, H, W], CIFAR10 [N, H, W, C]
            expected = expected[:, None] if expected.ndim == 3 else expected.transpose(0, 3, 1, 2)
            assert data.X.shape == expected.shape and np.array_equal(data.X, expected), (name, train)
            names = list(range(10)) if name == "mnist" else CIFAR_CLASSES
            assert list(data.y) == [names[k] for k in np.asarray(theirs.targets)], (name, train)
