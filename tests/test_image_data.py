"""Image sources, the image preprocessor and batch augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from deepfit.core.notes import Notes
from deepfit.errors import DataFormatError
from deepfit.modalities import load_source, preprocessor_from_dict, preprocessor_to_dict
from deepfit.modalities.image.arrays import digits_images, to_nchw
from deepfit.modalities.image.augment import make_augment
from deepfit.modalities.image.preprocess import ImagePreprocessor


def write_folder(root, n=6, seed=0):
    """Two classes of PNG/JPEG files of mixed sizes and modes, one corrupt file, one non-image."""
    rng = np.random.default_rng(seed)
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(n):
            side = (10, 14, 20)[i % 3]
            pixels = rng.integers(0, 255, (side, side + 2), dtype=np.uint8)
            mode = ("L", "RGB", "RGBA", "P")[i % 4]
            image = Image.fromarray(pixels).convert(mode)
            suffix = ".jpg" if mode in ("L", "RGB") and i % 2 else ".png"
            image.save(root / label / f"{label}{i}{suffix}")
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 8)
    (root / "dog" / "README.txt").write_text("not an image")
    return root


def test_folder_of_mixed_images_is_read_and_the_corrupt_file_named(tmp_path):
    notes = Notes()
    data = load_source(write_folder(tmp_path / "pets"), notes=notes)
    assert data.modality == "image" and data.task == "classification"
    assert data.X.shape == (12, 3, 16, 16) and data.X.dtype == np.uint8  # colour present: RGB
    assert sorted(data.y.unique()) == ["cat", "dog"] and (data.y == "cat").sum() == 6
    assert any("skipped 1 unreadable image file: cat/broken.png" in w for w in notes.warnings)
    assert any("resized to 16×16 (their median side" in d for d in notes.decisions)


def test_image_size_and_a_grayscale_folder(tmp_path):
    for label, value in (("dark", 30), ("light", 220)):
        (tmp_path / "g" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((9, 7), value, np.uint8)).save(tmp_path / "g" / label / f"{i}.png")
    data = load_source(tmp_path / "g", image_size=5)
    assert data.X.shape == (6, 1, 5, 5)
    assert set(np.unique(data.X)) == {30, 220}


def test_a_folder_without_readable_images_is_a_named_error(tmp_path):
    (tmp_path / "bad" / "a").mkdir(parents=True)
    (tmp_path / "bad" / "a" / "x.png").write_bytes(b"nope")
    with pytest.raises(DataFormatError, match="holds no readable image.*x.png"):
        load_source(tmp_path / "bad")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no class subfolders"):
        load_source(tmp_path / "empty")


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW"])
def test_npz_images_in_every_layout(tmp_path, layout):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (20, 3, 6, 5), dtype=np.uint8)
    stored = {"NHW": X[:, 0], "NHWC": X.transpose(0, 2, 3, 1), "NCHW": X}[layout]
    np.savez(tmp_path / "im.npz", X=stored, y=np.arange(20) % 2)
    data = load_source(tmp_path / "im.npz", modality="image" if layout == "NHW" else None)
    expected = X[:, :1] if layout == "NHW" else X
    np.testing.assert_array_equal(data.X, expected)
    assert data.modality == "image"


def test_float_images_stay_float_and_digits_become_8x8_images():
    assert to_nchw(np.random.rand(4, 6, 6).astype(np.float64), "").dtype == np.float32
    data = load_source("digits", modality="image")
    assert data.X.shape == (1797, 1, 8, 8) and data.X.dtype == np.uint8 and data.X.max() == 255
    assert load_source("digits").modality == "tabular"  # no image model asked for
    np.testing.assert_array_equal(data.X, digits_images())


def test_preprocessor_uses_the_training_rows_only_and_round_trips():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 100, (30, 3, 4, 4), dtype=np.uint8)
    other = rng.integers(150, 255, (10, 3, 4, 4), dtype=np.uint8)
    pre = ImagePreprocessor().fit(train)
    unit = train.astype(np.float64) / 255
    np.testing.assert_allclose(pre.mean, unit.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(pre.std, unit.std(axis=(0, 2, 3)), rtol=1e-5)
    out = pre.transform(train)
    assert out.dtype == np.float32 and out.shape == train.shape
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    loaded = preprocessor_from_dict(preprocessor_to_dict(pre))
    np.testing.assert_array_equal(loaded.transform(other), pre.transform(other))
    assert loaded.input_spec() == {"n_features": 3, "n_dense": 3, "modality": "image", "shape": (3, 4, 4)}
    # channels and size adapted to what the model takes
    assert pre.transform(other[:, :1].repeat(2, axis=2)).shape == (10, 3, 4, 4)


def test_augmentation_changes_training_batches_per_group_from_the_torch_generator():
    x = torch.randn(16, 3, 8, 8)
    augment = make_augment("strong", True, (3, 8, 8), [0.5] * 3, [0.25] * 3)
    torch.manual_seed(1)
    a = augment(x)
    torch.manual_seed(1)
    b = augment(x)
    torch.manual_seed(2)
    c = augment(x)
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    groups = a.tensor_split(8)
    assert len({round(float((g - x[:2]).abs().sum()), 3) for g in groups}) > 1  # not one draw for all
    assert make_augment("none", False, (1, 8, 8), [0.0], [1.0]) is None
    light = make_augment("light", False, (1, 8, 8), [0.0], [1.0])
    assert "random crop with 1 px" in light.description and "flip" not in light.description


def test_npz_of_1d_rows_is_still_a_table(tmp_path):
    np.savez(tmp_path / "t.npz", X=np.random.rand(30, 4), y=np.arange(30) % 2)
    assert load_source(tmp_path / "t.npz").modality == "tabular"
