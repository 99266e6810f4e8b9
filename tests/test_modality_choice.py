"""Which modality the data's shape, dtype and values choose when nothing is asked for
(data/kinds.py), each choice a note with the flag that overrides it, the same in train, check
and advise; and a table that looks like one ordered signal gets the sequence models suggested."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

import deepfit
from deepfit.cli import main
from deepfit.core.notes import Notes
from deepfit.data.kinds import image_like, signal_like
from deepfit.errors import CheckFailed, DataFormatError, PredictInputError, SettingsError
from deepfit.modalities.load import load_source

pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n=120, side=16, seed=0):
    """uint8 [N, side, side] with a bright square in class 1's images."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.integers(0, 60, (n, side, side)).astype(np.uint8)
    X[y == 1, 4:12, 4:12] += 150
    return X, y


def _signals(n=600, steps=40, seed=0):
    """[N, steps] traces: a noisy bump, early for class 1 and late for class 0 (random sign)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = 0.5 * rng.normal(size=(n, steps))
    pos = np.where(y == 1, rng.integers(5, 20, n), rng.integers(20, steps - 5, n))
    shape = np.array([0.2, 0.6, 1.0, 0.6, 0.2]) * 3
    for i in range(n):
        X[i, pos[i] - 2:pos[i] + 3] += shape * rng.choice([-1, 1])
    return X.astype(np.float32), y


def _read(X, y=None, **kw):
    notes = Notes()
    return load_source(X, y=y, notes=notes, **kw), notes


@pytest.mark.parametrize("make, modality", [
    (lambda X: X, "image"),                                      # uint8 [N, H, W]
    (lambda X: X.astype(np.float32) / 255, "image"),             # square float frames in [0, 1]
    (lambda X: (X - X.mean()).astype(np.float32) / X.std(), "sequence"),  # standardised: not pixels
    (lambda X: X[:, :, :5].astype(np.float32) / 255, "sequence"),  # [N, 16, 5] in [0, 1]: not square
    (lambda X: X[:, :, :4], "sequence"),                         # uint8 with 4 "channels": too narrow
], ids=["uint8", "float01-square", "standardised", "float01-narrow", "uint8-narrow"])
def test_3d_arrays_choose_images_or_sequences_by_dtype_and_values(make, modality):
    X, y = _images()
    data, notes = _read(make(X), y)
    assert data.modality == modality
    said = [d for d in notes.decisions if "one-channel images" in d]
    if modality == "image":
        assert said and "--modality sequence reads it as 16-step sequences" in said[0]
        assert data.X.shape == (120, 1, 16, 16)
    else:
        assert not said


def test_asking_for_sequences_overrides_the_choice_and_an_npz_chooses_alike(tmp_path):
    X, y = _images()
    assert _read(X, y, modality="sequence")[0].modality == "sequence"
    np.savez(tmp_path / "a.npz", X=X.astype(np.float32) / 255, y=y)
    data, notes = _read(str(tmp_path / "a.npz"))
    assert data.modality == "image" and any(d.startswith("a.npz: X of shape [N, 16, 16] read as")
                                            for d in notes.decisions)


def test_uint8_image_arrays_train_the_image_default_and_check_says_the_same(tmp_path, capsys):
    X, y = _images()
    run = deepfit.train(X, y, epochs=1, threads=1, report=False, progress=False, out=tmp_path / "r")
    assert run.config["model"]["name"] == "cnn"
    np.savez(tmp_path / "imgs.npz", X=X, y=y)
    assert main(["check", str(tmp_path / "imgs.npz")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "read as 16×16 one-channel images" in out and "cnn" in out and "cnn1d" not in out


def test_image_like_rule_reads_values_only_for_square_floats():
    assert image_like(np.zeros((2, 28, 28), np.uint8)) == "uint8 values, as pixels are"
    assert image_like(np.full((2, 28, 28), 0.5, np.float32)).startswith("square frames")
    assert image_like(np.full((2, 28, 28), 1.5, np.float32)) is None
    assert image_like(np.zeros((2, 28, 28, 3), np.uint8)) is None  # 4-D: images by shape already


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "wine", "diabetes", "iris"])
def test_no_bundled_table_is_taken_for_a_signal(name):
    X = getattr(datasets, f"load_{name}")().data
    assert signal_like(X) is None
    _, notes = _read(name)
    assert not any("ordered signal" in d for d in notes.decisions)


@pytest.mark.parametrize("make, signal", [
    (lambda rng: _signals()[0], True),
    (lambda rng: np.cumsum(rng.normal(size=(500, 32)), axis=1), True),     # random walks
    (lambda rng: np.sin(np.linspace(0, 12, 48) + rng.uniform(0, 6.3, (500, 1)))
     + 0.3 * rng.normal(size=(500, 48)), True),                             # sines, random phase
    (lambda rng: rng.normal(size=(500, 40)), False),                        # white noise
    (lambda rng: datasets.make_classification(500, 40, random_state=0)[0], False),
    (lambda rng: rng.normal(size=(500, 1)) + 0.5 * rng.normal(size=(500, 40)), False),  # one factor
], ids=["bumps", "walks", "sines", "noise", "make_classification", "common-factor"])
def test_signal_rule(make, signal):
    assert (signal_like(make(np.random.default_rng(0))) is not None) is signal


def test_a_signal_table_suggests_the_sequence_models_and_reads_rows_as_sequences(tmp_path):
    X, y = _signals()
    data, notes = _read(X, y)
    assert data.modality == "tabular"
    said = [d for d in notes.decisions if "look like one ordered signal" in d]
    assert said and "--model cnn1d" in said[0] and "deepfit advise tries one" in said[0]
    frame = pd.DataFrame(X, columns=[f"t{i}" for i in range(40)]).assign(label=np.where(y, "a", "b"))
    frame.to_csv(tmp_path / "sig.csv", index=False)
    assert any("ordered signal" in d for d in _read(str(tmp_path / "sig.csv"), target="label")[1].decisions)
    data, notes = _read(str(tmp_path / "sig.csv"), target="label", modality="sequence")
    assert data.modality == "sequence" and data.X.shape == (600, 40, 1)
    assert np.allclose(data.X[:, :, 0], X, atol=1e-6)
    assert any("each row's 40 columns ('t0' … 't39'" in d for d in notes.decisions)
    # and a model named: no suggestion, it was asked for
    assert not any("ordered signal" in d for d in _read(X, y, modality="tabular")[1].decisions)


def test_advise_tries_a_sequence_model_on_a_signal_table(tmp_path):
    X, y = _signals(n=400)
    advice = deepfit.advise(X, y, out=tmp_path / "adv", budget_seconds=6, epochs=8, threads=1)
    models = {r["model"] for r in advice.bakeoff}
    assert {"mlp", "cnn1d", "gradient_boosting", "linear"} <= models
    assert any("the data suggested cnn1d beside mlp" in r for r in advice.reasons)
    assert advice.evidence["network"] in ("mlp", "cnn1d")


def test_a_sequence_model_on_a_csv_reads_new_rows_by_column_name(tmp_path):
    """Trained on a CSV's rows as sequences, predict and evaluate select the step columns by
    name (shuffled columns, the target or an ID beside them change nothing); one missing is
    named; the saved preprocessor keeps the names."""
    X, y = _signals(n=300)
    frame = pd.DataFrame(X, columns=[f"t{i}" for i in range(40)]).assign(label=np.where(y, "a", "b"))
    frame.to_csv(tmp_path / "sig.csv", index=False)
    run = deepfit.train(str(tmp_path / "sig.csv"), target="label", model="cnn1d", epochs=2,
                        threads=1, report=False, progress=False, out=tmp_path / "r")
    assert run.predictor.preprocessor.steps == [f"t{i}" for i in range(40)]
    plain = deepfit.predict(run.path, frame.drop(columns="label"))
    shuffled = frame[list(np.random.default_rng(0).permutation(frame.columns))].assign(id=1)
    assert plain.equals(deepfit.predict(run.path, shuffled))
    assert plain.equals(deepfit.load(run.path).predict_frame(frame))  # the target column beside
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    assert deepfit.evaluate(run.path, str(tmp_path / "shuffled.csv")) == \
        deepfit.evaluate(run.path, str(tmp_path / "sig.csv"))
    with pytest.raises(PredictInputError, match="missing column the model was trained on: 't7'"):
        deepfit.predict(run.path, frame.drop(columns=["t7"]))


def test_one_column_of_another_scale_is_not_part_of_a_signal():
    X, _ = _signals()
    with_id = np.column_stack([np.arange(len(X)), X])  # an ID first: 40 steps and a counter
    assert signal_like(X) is not None and signal_like(with_id) is None


def test_a_modality_the_data_cannot_be_read_as_is_a_named_error(tmp_path):
    X, y = _signals(n=100)
    with pytest.raises(SettingsError, match="reads as tabular data, not as the image data asked for"):
        deepfit.train(X, y, modality="image", out=tmp_path / "r")
    with pytest.raises(SettingsError, match="reads as tabular data, not as the image data"):
        deepfit.train(X, y, model="cnn", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_image_arrays_need_one_label_per_image():
    X, y = _images()
    with pytest.raises(DataFormatError, match=r"one label per image, got shape \[10\] for 120 images"):
        _read(X, y[:10])


def test_square_whole_numbers_0_255_are_images_and_nan_images_are_a_check_finding(tmp_path, capsys):
    X, y = _images()
    data, notes = _read(X.astype(np.int64), y)  # pixels read from a CSV as int64
    assert data.modality == "image" and any("whole numbers 0-255" in d for d in notes.decisions)
    floats = X.astype(np.float32) / 255
    floats[3, 2, 2] = np.nan
    np.savez(tmp_path / "nan.npz", X=floats, y=y)
    assert main(["check", str(tmp_path / "nan.npz"), "--json"]) == 1  # a finding, not a stop
    found = [f for f in __import__("json").loads(capsys.readouterr().out) if f["check"] == "non_finite"]
    assert found and found[0]["severity"] == "error" and found[0]["subject"] == "image 3"
    with pytest.raises(CheckFailed, match="1 NaN or infinite value in 1 image"):  # no step taken
        deepfit.train(str(tmp_path / "nan.npz"), epochs=1, out=tmp_path / "r")


def test_check_refuses_a_transfer_model_without_weights_as_train_does(tmp_path, capsys):
    X, y = _images()
    np.savez(tmp_path / "imgs.npz", X=X, y=y)
    assert main(["check", str(tmp_path / "imgs.npz"), "--model", "transfer:resnet18"]) == 2
    assert "fine-tunes a pretrained network, but no --weights" in capsys.readouterr().err
