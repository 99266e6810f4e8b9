"""A folder of image files streamed from disk (modalities/image/files.py) against the same folder
decoded into memory: the same split, mean and std, model inputs, weights and predictions."""

from __future__ import annotations

import json
import logging
import struct
import zlib

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import deepfit
from deepfit import cli
from deepfit.config import split_settings
from deepfit.core.notes import Notes
from deepfit.data import batches
from deepfit.data.batches import make_batches
from deepfit.data.split import split_indices
from deepfit.errors import DataTooLargeError, ImageDecodeError
from deepfit.lifecycle.prepare import prepare_config
from deepfit.modalities.image.cache import CACHE_ENV
from deepfit.modalities.image.files import ImageFiles, read_image_folder
from deepfit.modalities.image.preprocess import ImagePreprocessor

QUIET = {"progress": False, "report": False, "threads": 1}
TRAIN = {"model": "cnn", "widths": (4, 8, 8), "hidden": 16, "epochs": 3, "batch_size": 8,
         "image_size": 12, "seed": 3, "patience": 100, "device": "cpu", **QUIET}


@pytest.fixture(autouse=True)
def keep_threads_and_logging():
    """Runs here use one thread; cli.main points deepfit's log at the stderr of the moment."""
    threads, logger = torch.get_num_threads(), logging.getLogger("deepfit")
    saved = logger.handlers[:], logger.level, logger.propagate
    yield
    torch.set_num_threads(threads)
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def write_shapes(root, n=14, seed=0):
    """Three classes (dark, mid, light images with noise) of PNGs of mixed sizes and modes
    L/RGB/RGBA/P, and one corrupt file."""
    rng = np.random.default_rng(seed)
    for k, label in enumerate(("dark", "mid", "light")):
        (root / label).mkdir(parents=True)
        for i in range(n):
            h, w = (10, 14, 17)[i % 3], (12, 9, 20)[i % 3]
            pixels = np.clip(rng.normal(50 + 75 * k, 30, (h, w, 3)), 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels).convert(("L", "RGB", "RGBA", "P")[i % 4])
            image.save(root / label / f"{label}{i:02d}.png")
    (root / "mid" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(60)))
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_shapes(tmp_path_factory.mktemp("img") / "shapes")


def prepare(folder, **settings):
    return prepare_config(folder, None, split_settings({**TRAIN, **settings}), Notes())


def test_both_paths_split_and_standardise_alike(folder):
    cached, streamed = prepare(folder, loader="memory"), prepare(folder, loader="stream")
    assert isinstance(cached.data.X, np.ndarray) and isinstance(streamed.data.X, ImageFiles)
    assert cached.data.X.shape == tuple(streamed.data.X.shape) == (42, 3, 12, 12)
    assert cached.data.y.tolist() == streamed.data.y.tolist()
    for split in ("train", "val"):  # the same rows, the same targets, the same inputs to the bit
        X, y = cached.tensors[split]
        files, y_streamed = streamed.tensors[split]
        assert torch.equal(y, y_streamed)
        assert torch.equal(X, streamed.preprocessor.standardise(torch.from_numpy(files.decode())))
    assert cached.test_frame[1].tolist() == streamed.test_frame[1].tolist()
    assert np.array_equal(cached.test_frame[0], streamed.test_frame[0].decode())
    # mean and std of the training split alone (the chunked streaming pass = the cached one)
    np.testing.assert_allclose(streamed.preprocessor.mean, cached.preprocessor.mean, atol=1e-6, rtol=0)
    np.testing.assert_allclose(streamed.preprocessor.std, cached.preprocessor.std, atol=1e-6, rtol=0)
    train = cached.data.X[split_indices(cached.data.y, "classification", 0.15, 0.15, 3).train] / 255.0
    assert np.allclose(streamed.preprocessor.mean, train.mean(axis=(0, 2, 3)), atol=1e-9)
    assert not np.allclose(streamed.preprocessor.mean, (cached.data.X / 255.0).mean(axis=(0, 2, 3)),
                           atol=1e-4)  # all the rows would give another mean


@pytest.mark.slow
@pytest.mark.parametrize("augment", ["none", "strong"])
def test_streamed_training_gives_the_weights_of_the_cached_one(folder, tmp_path, augment):
    """The contract of the two paths: same seed, same batch order → identical weights, with
    augmentation too (it draws from the global generator, which the DataLoader leaves alone)."""
    runs = {loader: deepfit.train(folder, loader=loader, workers=2, augment=augment,
                                  out=tmp_path / loader, **TRAIN) for loader in ("memory", "stream")}
    a, b = (load_file(runs[k].path / "model.safetensors") for k in ("memory", "stream"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [h["val_loss"] for h in runs["memory"].history] == [h["val_loss"] for h in runs["stream"].history]
    assert runs["memory"].metrics["accuracy"] == runs["stream"].metrics["accuracy"]
    for loader, run in runs.items():  # the corrupt file named, with the count, in both paths
        data = json.loads((run.path / "config.json").read_text())["data"]
        assert data["streamed"] == (loader == "stream")
        assert data["skipped_count"] == 1 and data["skipped_files"][0].startswith("mid/broken.png (")
        assert any(w.startswith("skipped 1 unreadable image file: mid/broken.png")
                   for w in run.config["warnings"])


def test_a_tiny_cache_limit_streams_and_predict_reads_the_folder_by_chunks(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(CACHE_ENV, "0.001")  # 1 kB: the folder does not fit, auto streams it
    out = tmp_path / "run"
    assert cli.main(["train", str(folder), "--model", "cnn", "--set", "widths=4,8,8", "--epochs", "2",
                     "--image-size", "12", "--workers", "0", "--threads", "1", "--device", "cpu", "--no-report",
                     "--out", str(out), "-q"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["streamed"] and config["data"]["skipped_count"] == 1
    assert any("over the cache limit of 0.001 MB (DEEPFIT_CACHE_LIMIT_MB)" in d for d in config["decisions"])
    capsys.readouterr()
    assert cli.main(["predict", str(out), str(folder), "-o", str(tmp_path / "p.csv")]) == 0
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert len(predictions) == 42 and predictions["file"].iloc[0] == "dark/dark00.png"
    assert "mid/broken.png" not in set(predictions["file"])
    loaded = deepfit.load(out)
    decoded = read_image_folder(folder, 12, Notes(), loader="memory", cache_limit_mb=100)[0]  # the same files, in memory
    assert predictions["prediction"].tolist() == list(loaded.predict(decoded))
    np.testing.assert_allclose(predictions.filter(like="proba_").to_numpy(), loaded.predict_proba(decoded),
                               atol=1e-6)


def test_loader_memory_over_the_cache_limit_is_a_named_error(folder, tmp_path, capsys):
    with pytest.raises(DataTooLargeError, match=r"--loader memory, but its images take 0\.0173 MB"):
        deepfit.train(folder, loader="memory", cache_limit_mb=0.001, out=tmp_path / "no", **TRAIN)
    assert not (tmp_path / "no").exists()
    code = cli.main(["train", str(folder), "--loader", "memory", "--cache-limit-mb", "0.001",
                     "--out", str(tmp_path / "no2"), "-q"])
    assert code == 2 and "over the cache limit" in capsys.readouterr().err
    assert not (tmp_path / "no2").exists()


def _bad_idat_png(path, good):
    """A PNG whose chunks' checksums are right (PIL's verify passes) but whose pixel data are not
    zlib data (decoding fails)."""
    data = good.read_bytes()
    at = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[at : at + 4])[0]
    body = b"not zlib" * 4
    chunk = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
    path.write_bytes(data[:at] + chunk + data[at + 12 + length :])


def test_a_file_that_fails_to_decode_late_is_named_from_the_workers(folder, tmp_path):
    bad = tmp_path / "late.png"
    _bad_idat_png(bad, folder / "dark" / "dark01.png")
    with Image.open(bad) as im:
        im.verify()  # passes the up-front check …
    files = ImageFiles([folder / "dark" / "dark00.png", bad], 3, (12, 12), root=tmp_path)
    batches = make_batches(files, torch.tensor([0, 1]), 2, loader="stream", shuffle=False, seed=0,
                           device=torch.device("cpu"), workers=1)
    with pytest.raises(ImageDecodeError, match=r"^cannot decode late\.png \("):  # … not decoding
        list(batches.epoch(0))
    with pytest.raises(ImageDecodeError, match="late.png"):
        files.decode()


def test_evaluation_batches_follow_one_rule_in_both_paths(folder, monkeypatch):
    """Validation batches hold as many rows in both paths (big images fewer at a time), so the
    validation metrics, and the decisions taken on them, agree to the bit."""
    assert batches.eval_rows(64) == batches.EVAL_BATCH and batches.eval_rows(3 * 224 * 224) == 111
    monkeypatch.setattr(batches, "EVAL_BYTES", 4 * 3 * 12 * 12 * 5)  # 5 images of 3×12×12 a batch
    images = read_image_folder(folder, 12, Notes(), loader="stream")[0][:14]
    pre = ImagePreprocessor().fit(images)
    y = torch.arange(14) % 3
    kw = {"shuffle": False, "seed": 0, "device": torch.device("cpu"), "workers": 0}
    cached = make_batches(torch.from_numpy(pre.transform(images.decode())), y, 4, loader="memory", **kw)
    streamed = make_batches(images, y, 4, loader="stream", transform=pre.standardise, **kw)
    pairs = list(zip(cached.eval_batches(), streamed.eval_batches(), strict=True))
    assert [len(a[0]) for a, _ in pairs] == [5, 5, 4]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in pairs)


def test_the_audit_reads_a_streamed_folder_by_chunks_and_finds_copied_images(tmp_path):
    """The data audit of a folder too big for memory decodes it chunk by chunk: a copied image
    is found as in the cached path."""
    root = write_shapes(tmp_path / "shapes", n=8)
    copy = root / "dark" / "dark00-copy.png"
    copy.write_bytes((root / "dark" / "dark00.png").read_bytes())
    found = {}
    for loader in ("memory", "stream"):
        findings = deepfit.check(root, models=["cnn"], image_size=12, loader=loader)
        found[loader] = {f.check: f.severity for f in findings}
    assert found["stream"] == found["memory"]
    assert "duplicates" in found["stream"] or "split_leak" in found["stream"]
