"""Messages that are true (#25, item 5): `deepfit check` names an image folder's unreadable files
and blank images by their path in the folder (an array's blank images by index), and the advice
of its findings fits the data's modality (transfer learning for images, gradient boosting for a
table, a small cnn1d/gru against gradient boosting for sequences)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepfit.cli import main
from deepfit.tools.check import check

pytestmark = pytest.mark.usefixtures("keep_logging")

SMALL_CNN = ["--set", "widths=4", "--set", "hidden=8"]
GOOD = [f"{label}/good{i}.png" for label in ("cat", "dog") for i in range(6)]
UNREADABLE = ["cat/bad.jpg", "cat/truncated.png", "dog/empty.png"]
BLANK = ["cat/flat.png", "dog/black.png"]


def planted_folder(root):
    """Two classes of six noisy PNGs, plus the planted: a text file named .jpg, a truncated PNG,
    an empty file, a flat-coloured and an all-black image."""
    rng = np.random.default_rng(0)
    for name in GOOD:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / name)
    (root / "cat" / "bad.jpg").write_text("this is text, not a JPEG")
    png = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(png, "PNG")
    (root / "cat" / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    (root / "dog" / "empty.png").write_bytes(b"")
    Image.fromarray(np.full((12, 12, 3), (10, 200, 30), np.uint8)).save(root / "cat" / "flat.png")
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(root / "dog" / "black.png")
    return root


def only(findings, name):
    found = [f for f in findings if f["check"] == name]
    assert len(found) == 1, [f["check"] for f in findings]
    return found[0]


def test_check_names_the_unreadable_and_blank_files_and_no_good_one(tmp_path, capsys):
    folder = planted_folder(tmp_path / "pets")
    assert main(["check", str(folder), *SMALL_CNN, "--json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    unreadable = only(findings, "unreadable_files")
    assert unreadable["severity"] == "warning" and unreadable["evidence"] == 3
    assert unreadable["subject"].split(", ") == UNREADABLE
    assert "skipped 3 unreadable image files" in unreadable["message"]
    assert "dog/empty.png (empty: 0 bytes)" in unreadable["message"]
    assert "cat/bad.jpg (not an image" in unreadable["message"]
    assert str(tmp_path) not in unreadable["message"]  # names in the folder, not PIL's full paths
    blank = only(findings, "blank")
    assert blank["severity"] == "warning" and blank["evidence"] == 2
    assert sorted(blank["subject"].split(", ")) == BLANK  # a flat colour is blank, not only black
    assert "failed export or capture" in blank["message"]
    # training's warning is not shown a second time beside the finding that names the files
    assert not any("unreadable" in f["message"] for f in findings if f["check"] == "reading")
    text = json.dumps(findings)
    assert not any(name in text for name in GOOD)

    assert main(["check", str(folder), *SMALL_CNN]) == 0  # the table on screen names them too
    out = " ".join(capsys.readouterr().out.split())
    for name in UNREADABLE + BLANK:
        assert name in out
    assert not any(name in out for name in GOOD)


def test_a_streamed_folder_names_them_from_its_one_decoding_pass(tmp_path):
    findings = check(planted_folder(tmp_path / "pets"), loader="stream", widths=(4,), hidden=8)
    by_check = {f.check: f for f in findings}
    assert by_check["unreadable_files"].subject.split(", ") == UNREADABLE
    assert sorted(by_check["blank"].subject.split(", ")) == BLANK


def test_a_long_list_of_files_is_cut_with_the_count(tmp_path):
    folder = planted_folder(tmp_path / "pets")
    for i in range(25):
        (folder / "dog" / f"junk{i:02d}.png").write_bytes(b"not a png")
    unreadable = next(f for f in check(folder, widths=(4,), hidden=8) if f.check == "unreadable_files")
    assert unreadable.evidence == 28 and unreadable.subject.endswith("… (28 in all)")
    assert "… (28 in all)" in unreadable.message


def test_an_npz_names_its_blank_images_by_index(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (60, 3, 8, 8), dtype=np.uint8)
    X[12], X[40] = 0, 255
    X[41] = np.array([10, 20, 30], np.uint8)[:, None, None]  # one flat colour, channels differ
    np.savez(tmp_path / "im.npz", X=X, y=np.arange(60) % 2)
    assert main(["check", str(tmp_path / "im.npz"), *SMALL_CNN, "--json"]) == 0
    blank = only(json.loads(capsys.readouterr().out), "blank")
    assert blank["subject"] == "images 12, 40, 41" and blank["evidence"] == 3


def test_the_samples_advice_fits_the_modality(tmp_path, capsys):
    def fix(*argv: str) -> str:
        assert main(["check", *argv, "--json"]) == 0
        return only(json.loads(capsys.readouterr().out), "samples")["fix"]

    images = fix(str(planted_folder(tmp_path / "pets")), *SMALL_CNN)
    assert "transfer:resnet18 --weights DEFAULT" in images and "augment" in images
    assert "gradient boosting" not in images and "table" not in images

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["y"] = (frame.a + frame.b > 0).astype(int)
    frame.to_csv(tmp_path / "t.csv", index=False)
    table = fix(str(tmp_path / "t.csv"), "--target", "y")
    assert "gradient boosting" in table and "deepfit compare" in table
    assert "transfer" not in table and "augment" not in table

    X = rng.normal(size=(120, 16, 2)).astype(np.float32)
    np.savez(tmp_path / "seq.npz", X=X, y=(X[:, :4, 0].mean(axis=1) > 0).astype(int))
    sequences = fix(str(tmp_path / "seq.npz"), "--set", "width=8", "--set", "depth=1")
    assert "cnn1d" in sequences and "gru" in sequences and "--baselines" in sequences
    assert "gradient boosting" in sequences and "transfer" not in sequences


def test_messages_count_the_data_s_own_samples(tmp_path):
    X = np.random.default_rng(0).normal(size=(50, 16, 2)).astype(np.float32)
    findings = check(X, y=np.arange(50) % 2, width=8, depth=1)
    samples = next(f for f in findings if f.check == "samples")
    assert samples.message.startswith("50 sequences:")


def test_a_streamed_folder_names_files_that_fail_only_when_decoded(tmp_path):
    """A truncated JPEG passes PIL's header check and fails in the decoding: a streamed check
    names it beside the others (not a stop at the first), neither blank nor a duplicate."""
    folder = planted_folder(tmp_path / "pets")
    jpeg = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        jpeg, "JPEG")
    for name in ("cat/cut1.jpg", "dog/cut2.jpg"):
        (folder / name).write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 3])
    findings = check(folder, loader="stream", widths=(4,), hidden=8)
    by_check = {f.check: f for f in findings}
    named = by_check["unreadable_files"].subject.split(", ")
    assert sorted(named) == sorted([*UNREADABLE, "cat/cut1.jpg", "dog/cut2.jpg"])
    assert by_check["unreadable_files"].evidence == 5
    assert sorted(by_check["blank"].subject.split(", ")) == BLANK
    assert "duplicates" not in by_check
    stop = by_check["undecodable"]  # and training would stop at the first: an error, said
    assert stop.severity == "error" and "training would stop: cannot decode cat/cut1.jpg" in stop.message
