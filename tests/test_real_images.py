"""Image folders as people have them (issue 23): EXIF-rotated photos decode upright, 16-bit files
keep their contrast (scaled by the training range, saved and applied at predict), a
train/ val/ test/ folder gives those splits, and other nestings are named errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import deepfit
from deepfit import cli
from deepfit.checks.audit import audit_data
from deepfit.core.notes import Notes
from deepfit.data.dataset import Dataset
from deepfit.data.split import fixed_splits
from deepfit.modalities import load_source
from deepfit.modalities.image.files import read_image_folder
from deepfit.modalities.image.preprocess import ImagePreprocessor

pytestmark = pytest.mark.usefixtures("one_thread", "keep_logging")

TINY = {"model": "cnn", "widths": (4, 8), "hidden": 8, "epochs": 2, "batch_size": 8, "seed": 1,
        "image_size": 16, "device": "cpu", "threads": 1, "progress": False, "report": False,
        "workers": 0}
EXIF_TURN = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}  # stored = upright.turned


def pattern(label: int, i: int, rng) -> np.ndarray:
    """A 12×16 (H×W) RGB image: a bright bar along the top (class 0) or the left (class 1)."""
    image = rng.integers(0, 60, (12, 16, 3)).astype(np.uint8)
    if label == 0:
        image[: 3 + i % 2] += 150
    else:
        image[:, : 4 + i % 2] += 150
    return image


def write_photos(root, rotated: bool, n: int = 8) -> None:
    """Two classes of PNGs; with `rotated`, every other file is stored turned, with the EXIF
    orientation tag (6 or 8) that turns it back."""
    rng = np.random.default_rng(0)
    for label in (0, 1):
        (root / f"c{label}").mkdir(parents=True)
        for i in range(n):
            upright = Image.fromarray(pattern(label, i, rng))
            path = root / f"c{label}" / f"{i}.png"
            tag = (6, 8)[i % 4 // 2] if rotated and i % 2 else None
            if tag is None:
                upright.save(path)
                continue
            exif = Image.Exif()
            exif[0x0112] = tag
            upright.transpose(EXIF_TURN[tag]).save(path, exif=exif)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    base = tmp_path_factory.mktemp("photos")
    write_photos(base / "upright", rotated=False)
    write_photos(base / "rotated", rotated=True)
    return base / "upright", base / "rotated"


def test_exif_rotated_files_decode_like_the_upright_ones_in_both_paths(photos):
    upright, rotated = photos
    cached = read_image_folder(upright, 16, Notes(), loader="memory", cache_limit_mb=100)
    notes = Notes()
    turned = read_image_folder(rotated, 16, notes, loader="memory", cache_limit_mb=100)
    streamed = read_image_folder(rotated, 16, Notes(), loader="stream")[0]
    assert turned[3]["exif_rotated"] == 8 and any("8 images carry an EXIF" in d for d in notes.decisions)
    assert np.array_equal(cached[0], turned[0]) and np.array_equal(cached[0], streamed.decode())
    assert cached[1] == turned[1]
    # without the tag applied, the turned files would differ (their bars lie the other way)
    assert not np.array_equal(np.asarray(Image.open(rotated / "c0" / "1.png")),
                              np.asarray(Image.open(upright / "c0" / "1.png")).transpose(1, 0, 2))


def test_exif_rotated_folder_trains_and_predicts_like_the_upright_one(photos, tmp_path):
    upright, rotated = photos
    a = deepfit.train(upright, loader="memory", out=tmp_path / "a", **TINY)
    b = deepfit.train(rotated, loader="stream", out=tmp_path / "b", **TINY)
    wa, wb = (load_file(run.path / "model.safetensors") for run in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # the same pixels, so the same weights
    loaded = deepfit.load(a.path)
    for folder in ("c0", "c1"):
        p_up = loaded.predict_proba(str(upright / folder))
        p_rot = loaded.predict_proba(str(rotated / folder))
        np.testing.assert_array_equal(p_up, p_rot)
    findings = deepfit.check(rotated, image_size=16)
    exif = [f for f in findings if f.check == "exif_orientation"]
    assert exif and exif[0].evidence == 8 and exif[0].severity == "info"


def write_deep(root, n: int = 6) -> None:
    """Two classes of 16-bit grey PNGs whose values lie in 300-470: a bright square top-left
    (class 0) or bottom-right (class 1) on a darker, noisy ground."""
    rng = np.random.default_rng(2)
    for label in (0, 1):
        (root / f"c{label}").mkdir(parents=True)
        for i in range(n):
            image = rng.integers(300, 360, (16, 16)).astype(np.uint16)
            rows = slice(0, 8) if label == 0 else slice(8, 16)
            image[rows, rows] = rng.integers(420, 471, (8, 8))
            Image.fromarray(image).save(root / f"c{label}" / f"{i}.png")


def test_sixteen_bit_images_keep_their_contrast_and_the_range_is_saved(tmp_path):
    write_deep(tmp_path / "deep")
    assert Image.open(tmp_path / "deep" / "c0" / "0.png").mode == "I;16"
    data = load_source(tmp_path / "deep", notes=Notes(), modality="image", image_size=16, loader="memory")
    assert data.X.dtype == np.uint16 and data.X.min() >= 300 and data.X.max() <= 470
    notes = Notes()
    pre = ImagePreprocessor().fit(data.X, notes)
    lo, hi = pre.value_range
    assert 300 <= lo <= 305 and 465 <= hi <= 470
    eight = pre.eight_bits(data.X)
    assert eight.dtype == np.uint8 and eight.min() <= 5 and eight.max() >= 250  # not one flat colour
    assert all(len(np.unique(image)) > 50 for image in eight)
    assert any("scaled to 8 bits by" in d for d in notes.decisions)

    run = deepfit.train(tmp_path / "deep", out=tmp_path / "run", loader="memory", **TINY)
    streamed = deepfit.train(tmp_path / "deep", out=tmp_path / "run2", loader="stream", **TINY)
    saved = json.loads((run.path / "model.json").read_text())["preprocessor"]
    loaded = deepfit.load(run.path)
    assert loaded.preprocessor.value_range == streamed.predictor.preprocessor.value_range
    lo, hi = loaded.preprocessor.value_range
    assert 300 <= lo <= 305 and 465 <= hi <= 470
    assert saved["value_range"] == [lo, hi] and saved["decode"] == "uint16"
    # predict decodes the file at its 16-bit values and scales it by the saved range
    raw = np.asarray(Image.open(tmp_path / "deep" / "c1" / "3.png"), dtype=np.float64)
    by_hand = np.clip(np.rint((raw - lo) * (255.0 / (hi - lo))), 0, 255) / 255.0
    by_hand = (by_hand - loaded.preprocessor.mean[0]) / loaded.preprocessor.std[0]
    got = loaded.preprocessor.transform(str(tmp_path / "deep" / "c1" / "3.png"))
    np.testing.assert_allclose(got[0, 0], by_hand, atol=1e-5)
    file_pred = loaded.predict_proba(str(tmp_path / "deep" / "c1" / "3.png"))
    np.testing.assert_allclose(file_pred, loaded.predict_proba(raw.astype(np.uint16)), atol=1e-6)
    findings = deepfit.check(tmp_path / "deep", image_size=16)
    depth = [f for f in findings if f.check == "bit_depth"]
    assert depth and "values 300 to 470" in depth[0].message and "scaled to 8 bits" in depth[0].message


def test_identical_decoded_images_blame_the_decoding_not_duplicates():
    X = np.full((6, 1, 4, 4), 255, np.uint8)
    y = pd.Series(["a", "b"] * 3, name="target")
    facts = {"modes": ["I;16"], "deep": 6, "dtype": "uint8", "exif_rotated": 0}
    findings = audit_data(Dataset(X, y, "flat", "target", "classification", modality="image",
                                  reading=facts))
    same = [f for f in findings if f.check == "identical"]
    assert same and same[0].severity == "error" and "decoding lost their contrast" in same[0].message
    assert not [f for f in findings if f.check in ("duplicates", "conflicting_labels")]


def write_split_folder(root, counts: dict[str, dict[str, int]], folders=("train", "val", "test")) -> None:
    rng = np.random.default_rng(3)
    for part, name in zip(("train", "val", "test"), folders):
        for label, n in counts.get(part, {}).items():
            (root / name / label).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(pattern(int(label[-1]) % 2, i, rng)).save(root / name / label / f"{i}.png")


def test_a_train_val_test_folder_gives_those_splits(tmp_path):
    counts = {"train": {"c0": 6, "c1": 5, "c2": 4}, "val": {"c0": 2, "c1": 2, "c2": 2},
              "test": {"c0": 2, "c1": 3}}
    write_split_folder(tmp_path / "photos", counts)
    run = deepfit.train(tmp_path / "photos", out=tmp_path / "run", val_size=0.3, **TINY)
    config = json.loads((run.path / "config.json").read_text())
    assert config["data"]["split_sizes"] == {"train": 15, "val": 6, "test": 5}
    assert any("training split counts: c0=6, c1=5, c2=4" in d for d in config["decisions"])
    assert any("no random split (--val-size and --test-size not used)" in d for d in config["decisions"])
    assert any("test/ has no folder for class c2" in w for w in config["warnings"])
    findings = deepfit.check(tmp_path / "photos", image_size=16)
    layout = [f for f in findings if f.check == "split_layout"]
    assert layout and "train/ 15, val/ 6, test/ 5" in layout[0].message
    # held out (--test, evaluate), the folder means its test/ images
    held = load_source(tmp_path / "photos", held_out=True, modality="image", image_size=16)
    assert held.y.value_counts().to_dict() == {"c1": 3, "c0": 2}


def test_train_and_valid_folders_carve_the_test_split_from_train(tmp_path):
    write_split_folder(tmp_path / "p", {"train": {"c0": 10, "c1": 10}, "val": {"c0": 3, "c1": 3}},
                       folders=("Train", "valid", "test"))
    data = load_source(tmp_path / "p", modality="image", image_size=16, notes=Notes())
    notes = Notes()
    splits = fixed_splits(data.reading["splits"], data.y, "classification", 0.15, 0.2, 0, notes)
    assert splits.sizes() == {"train": 16, "val": 6, "test": 4}
    assert set(splits.val) == set(range(20, 26))  # valid/ as it is
    assert data.y.iloc[splits.test].value_counts().to_dict() == {"c0": 2, "c1": 2}  # stratified
    assert any("test split carved from the folder's training images" in d for d in notes.decisions)


def test_class_folders_holding_folders_are_a_named_error(tmp_path, capsys):
    for label in ("cats", "dogs"):
        for place in ("indoor", "outdoor"):
            (tmp_path / "photos" / label / place).mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "photos" / label / place / "0.png")
    out = tmp_path / "run"
    assert cli.main(["train", str(tmp_path / "photos"), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "photos/cats/ holds folders (photos/cats/indoor/, photos/cats/outdoor/), not images" in err
    assert "train/ val/ test/ each with class folders" in err and not out.exists()


def test_a_class_only_in_val_is_a_named_error(tmp_path, capsys):
    write_split_folder(tmp_path / "p", {"train": {"c0": 4, "c1": 4}, "val": {"c0": 2, "c2": 2}})
    assert cli.main(["train", str(tmp_path / "p"), "--out", str(tmp_path / "run"), "-q"]) == 2
    assert "p/val/ holds class folder that p/train/ lacks: c2" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_images_too_small_for_the_model_stop_before_training(photos, tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", str(photos[0]), "--model", "transfer:vgg11", "--weights", "none",
                     "--image-size", "8",
                     "--threads", "1", "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "transfer:vgg11 cannot take 3-channel 8×8 images (" in err and "--image-size" in err
