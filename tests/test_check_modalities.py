"""`deepfit check` on images and sequences (checks/arrays.py, checks/__init__.py): each mistake a
check must catch is planted, and clean data pass with no error finding."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepfit.checks.audit import audit_data
from deepfit.cli import main
from deepfit.data.split import Splits, split_by_time, split_indices
from deepfit.modalities import load_source
from deepfit.modalities.sequence.audit import window_overlap
from deepfit.tools.check import check

SMALL_CNN = {"widths": (4,), "hidden": 8}
SMALL_CNN1D = {"width": 8, "depth": 1}


pytestmark = pytest.mark.usefixtures("keep_logging")


def images(n_per_class: int = 30, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Float images [N, 1, 8, 8]: a bright bar whose row tells the class, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    X = rng.uniform(0, 0.3, size=(len(y), 1, 8, 8)).astype(np.float32)
    X[np.arange(len(y)), 0, 2 * y + 1, :] += 0.7
    return X, y


def sequences(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 16, 2)).astype(np.float32)
    return X, (X[:, :4, 0].mean(axis=1) > 0).astype(int)


def series_frame(n: int = 240) -> pd.DataFrame:
    t = np.arange(n)
    return pd.DataFrame({"time": pd.date_range("2024-01-01", periods=n, freq="h").astype(str),
                         "value": np.sin(t / 4) + np.random.default_rng(0).normal(0, 0.1, n)})


def found(findings, name: str, severity: str | None = None):
    return [f for f in findings if f.check == name and severity in (None, f.severity)]


def errors(findings):
    return [f"{f.check}: {f.message}" for f in findings if f.severity == "error"]


# ------------------------------------------------------------------------------ clean data pass
def test_clean_images_pass_with_the_model_checks(tmp_path):
    X, y = images()
    np.savez(tmp_path / "im.npz", X=X, y=y)
    findings = check(tmp_path / "im.npz", **SMALL_CNN)
    assert not errors(findings), errors(findings)
    assert {"output_shape", "gradient_flow", "overfit_batch", "finite"} <= {f.check for f in findings}
    assert all(f.subject == "cnn" for f in found(findings, "gradient_flow"))  # the image default


def test_clean_sequences_pass_and_the_default_model_is_cnn1d(tmp_path):
    X, y = sequences()
    np.savez(tmp_path / "seq.npz", X=X, y=y)
    findings = check(tmp_path / "seq.npz", **SMALL_CNN1D)
    assert not errors(findings), errors(findings)
    assert found(findings, "overfit_batch", "info")[0].subject == "cnn1d"


def test_a_clean_series_splits_without_overlap_and_the_cli_exits_0(tmp_path, capsys):
    series_frame().to_csv(tmp_path / "s.csv", index=False)
    code = main(["check", str(tmp_path / "s.csv"), "--target", "value", "--window", "10",
                 "--horizon", "2", "--set", "width=8", "--set", "depth=1", "--json"])
    findings = json.loads(capsys.readouterr().out)
    assert code == 0, [f for f in findings if f["severity"] == "error"]
    overlap = [f for f in findings if f["check"] == "window_overlap"]
    assert overlap[0]["severity"] == "info" and overlap[0]["evidence"] == 0


# ------------------------------------------------------------------------------ planted: images
def test_nan_and_blank_images_are_found(tmp_path, capsys):
    X, y = images()
    X[7] = 0.5  # a flat grey image
    data = load_source(X, y=y)
    assert data.modality == "image"
    assert found(audit_data(data), "blank", "warning")[0].subject == "image 7"
    data.X = data.X.copy()
    data.X[5, 0, 2, 3] = np.nan  # past the reader (a Dataset built by hand): the audit says it
    assert found(audit_data(data), "non_finite", "error")[0].subject == "image 5"
    X[5, 0, 2, 3] = np.nan  # from a file: the check's finding names the image (exit 1)
    np.savez(tmp_path / "nan.npz", X=X, y=y)
    assert found(check(tmp_path / "nan.npz"), "non_finite", "error")[0].subject == "image 5"
    assert main(["check", str(tmp_path / "nan.npz")]) == 1
    assert "image 5" in capsys.readouterr().out


def test_a_class_with_one_image_is_an_error(tmp_path):
    X, y = images()
    X, y = np.concatenate([X, X[:1] + 0.1]), np.append(y, 9)
    np.savez(tmp_path / "im.npz", X=X, y=y)
    findings = check(tmp_path / "im.npz", model="cnn", **SMALL_CNN)
    sizes = found(findings, "class_size", "error")
    assert sizes and "'9': 1" in sizes[0].message
    assert found(findings, "split", "error")  # and the stratified split cannot be made


def test_images_duplicated_across_train_and_test_are_a_leak():
    X, y = images()
    splits = split_indices(pd.Series(y), "classification", 0.15, 0.15, seed=0)
    X[splits.test[:6]] = X[splits.train[:6]]  # six test images copied from training images
    y[splits.test[:6]] = y[splits.train[:6]]
    findings = audit_data(load_source(X, y=y), splits)
    leak = found(findings, "split_leak", "error")
    assert leak and leak[0].evidence == 6
    assert found(findings, "duplicates")


def test_the_same_image_with_two_labels_is_label_noise():
    X, y = images()
    X[40] = X[3]  # class 0's image, labelled class 1
    findings = audit_data(load_source(X, y=y))
    conflicting = found(findings, "conflicting_labels", "warning")
    assert conflicting and conflicting[0].subject == "images 3, 40"


def test_an_image_folder_is_checked_through_the_cli(tmp_path, capsys):
    X, y = images(n_per_class=8, classes=2)
    for i, (image, label) in enumerate(zip(X, y)):
        (tmp_path / "imgs" / f"c{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray((image[0] * 255).astype(np.uint8)).save(tmp_path / "imgs" / f"c{label}" / f"{i}.png")
    code = main(["check", str(tmp_path / "imgs"), "--image-size", "8", "--set", "widths=4",
                 "--set", "hidden=8", "--json"])
    findings = json.loads(capsys.readouterr().out)
    assert code == 0, [f for f in findings if f["severity"] == "error"]
    few = [f for f in findings if f["check"] == "class_size"]
    assert few and few[0]["severity"] == "warning"  # 8 images a class: too few to learn well


def test_digits_are_checked_as_images_with_model_cnn():
    findings = check("digits", model="cnn", **SMALL_CNN)
    assert found(findings, "overfit_batch")[0].subject == "cnn" and not errors(findings)
    assert found(findings, "samples")[0].evidence == 1797


# ------------------------------------------------------------------------------ planted: sequences
def test_nan_in_sequences_is_found(tmp_path):
    X, y = sequences()
    X[[4, 9], 3, 1] = np.nan
    np.savez(tmp_path / "seq.npz", X=X, y=y)
    findings = check(tmp_path / "seq.npz", **SMALL_CNN1D)
    nan = found(findings, "non_finite", "warning")
    assert nan and nan[0].subject == "rows 4, 9" and nan[0].evidence == 2


def test_a_constant_channel_and_flat_sequences_are_found():
    X, y = sequences()
    X[:, :, 1] = 3.0
    X[11] = 3.0
    findings = audit_data(load_source(X, y=y))
    assert found(findings, "constant_channel", "warning")[0].subject == "channel 1"
    assert found(findings, "blank")[0].subject == "row 11"


def test_windows_split_by_shuffling_overlap_and_are_an_error(tmp_path):
    series_frame().to_csv(tmp_path / "s.csv", index=False)
    data = load_source(tmp_path / "s.csv", target="value", window=10, horizon=2)
    by_time = split_by_time(len(data), 0.15, 0.15, data.split_gap)
    assert found(audit_data(data, by_time), "window_overlap", "info")
    shuffled = split_indices(data.y, "regression", 0.15, 0.15, seed=0)  # the classic mistake
    overlap = found(audit_data(data, shuffled), "window_overlap", "error")
    assert overlap and overlap[0].evidence > 0
    # by hand: windows 0 (rows 0-11) and 11 (rows 11-22) share row 11; window 12 shares none
    span = data.split_gap + 1
    assert window_overlap(Splits(np.array([0]), np.array([11]), np.array([])), span, 30)[0].evidence == 1
    assert window_overlap(Splits(np.array([0]), np.array([12]), np.array([])), span, 30)[0].severity == "info"


def test_a_time_column_out_of_order_is_an_error(tmp_path):
    frame = series_frame()
    frame.loc[[50, 51], "time"] = frame.loc[[51, 50], "time"].to_numpy()  # two rows swapped
    frame.to_csv(tmp_path / "s.csv", index=False)
    findings = audit_data(load_source(tmp_path / "s.csv", target="value", window=10))
    order = found(findings, "time_order", "error")
    assert order and order[0].subject == "row 51" and "'time'" in order[0].message


def test_columns_that_only_look_like_time_are_not_checked_for_order(tmp_path):
    frame = series_frame()
    frame["time"] = np.arange(len(frame)) % 24  # hour of day: a feature that repeats, not an axis
    frame["day"] = pd.date_range("2024-01-01", periods=len(frame), freq="D").strftime("%d/%m/%Y")
    frame.to_csv(tmp_path / "s.csv", index=False)
    data = load_source(tmp_path / "s.csv", target="value", window=10)
    # day-first dates are not guessed at (one row would read 03/10 as 3 October, another as 10 March)
    assert data.series["time_column"] is None
    assert not found(audit_data(data), "time_order")


def test_images_of_the_test_file_copied_from_training_are_a_leak():
    X, y = images()
    data = load_source(X, y=y)
    splits = split_indices(data.y, "classification", 0.2, 0.0, seed=0)
    held_out = load_source(X[splits.train[:5]], y=y[splits.train[:5]], held_out=True)
    leak = found(audit_data(data, splits, held_out), "split_leak")
    assert leak and leak[0].evidence == 5 and "--test file" in leak[0].subject
