"""Sequences end to end: models that must read order, forecasting windows split by time, per-channel
normalisation fitted on the training windows, and predictions from a reloaded run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import deepfit
from deepfit.data.split import split_by_time
from deepfit.data.targets import TargetEncoder
from deepfit.errors import PredictInputError, SettingsError, SplitError
from deepfit.modalities import load_source
from deepfit.modalities.sequence.preprocess import SequencePreprocessor

RUN = {"progress": False, "report": False, "checkpoint": False, "lr": 3e-3}
WINDOW = 24


pytestmark = pytest.mark.usefixtures("one_thread")


def which_comes_first(n: int = 600, length: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noise with a bump (+1.5 over 3 steps) and a dip (-1.5 over 3 steps) in every sequence; the
    class says which comes first. Both occur in every sequence: only their order tells the class."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 0.3, (n, length))
    y = rng.integers(0, 2, n)
    for i in range(n):
        early = rng.integers(0, length - 6)
        late = rng.integers(early + 3, length - 2)
        bump, dip = (early, late) if y[i] == 1 else (late, early)
        X[i, bump : bump + 3] += 1.5
        X[i, dip : dip + 3] -= 1.5
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def order_npz(tmp_path_factory):
    X, y = which_comes_first()
    path = tmp_path_factory.mktemp("order") / "order.npz"
    np.savez(path, X=X[:, :, None], y=y)  # [N, T, 1]: read as sequences without being told
    return path


@pytest.fixture(scope="module")
def sine_csv(tmp_path_factory):
    rng = np.random.default_rng(1)
    t = np.arange(1000)
    value = np.sin(2 * np.pi * t / 25) + 0.5 * np.sin(2 * np.pi * t / 60) + rng.normal(0, 0.1, len(t))
    stamps = pd.date_range("2024-01-01", periods=len(t), freq="h").astype(str)
    path = tmp_path_factory.mktemp("sine") / "sine.csv"
    pd.DataFrame({"time": stamps, "value": value}).to_csv(path, index=False)
    return path


# ------------------------------------------------------------------ models that must read order
@pytest.mark.parametrize("name", ["gru", "lstm", "transformer", "cnn1d"])
def test_sequence_models_learn_which_pattern_comes_first(name, order_npz, tmp_path):
    settings = {} if name == "cnn1d" else {"model": name}  # cnn1d: the default for sequences
    if name in ("cnn1d",):
        settings["width"] = 32  # half the default width: the same accuracy in a quarter the time
    run = deepfit.train(order_npz, epochs=8, out=tmp_path / name, **settings, **RUN)
    assert run.config["model"]["name"] == name
    assert run.config["data"]["modality"] == "sequence"
    assert run.metrics["accuracy"] >= 0.95, run.metrics["accuracy"]
    X = np.load(order_npz)["X"]
    reloaded = deepfit.load(run.path)
    np.testing.assert_array_equal(reloaded.predict(X[:50]), run.predict(X[:50]))
    np.testing.assert_array_equal(reloaded.predict(X[:50, :, 0]), run.predict(X[:50]))  # [N, T]
    if name == "cnn1d":
        assert any("model: cnn1d, the default for sequence data" in d for d in run.config["decisions"])
        frame = deepfit.predict(run.path, order_npz)
        assert list(frame.columns) == ["prediction", "proba_0", "proba_1"] and len(frame) == len(X)


def test_an_n_by_t_array_is_a_table_unless_sequences_are_asked_for():
    X, y = which_comes_first(n=60)
    assert load_source(X, y=y).modality == "tabular"
    data = load_source(X, y=y, modality="sequence")
    assert data.modality == "sequence" and data.X.shape == (60, 20, 1)
    assert load_source(X[:, :, None], y=y).modality == "sequence"
    with pytest.raises(SettingsError, match="--window"):
        load_source(pd.DataFrame({"v": np.arange(50.0)}), target="v", window=5, modality="tabular")


# ------------------------------------------------------------------------------- forecasting
def test_forecasting_a_noisy_sine_beats_the_last_value(sine_csv, tmp_path):
    run = deepfit.train(sine_csv, target="value", window=WINDOW, epochs=10, width=32,
                        out=tmp_path / "sine", **RUN)
    assert run.config["model"]["name"] == "cnn1d" and run.config["data"]["task"] == "regression"
    data = load_source(sine_csv, target="value", window=WINDOW)
    splits = split_by_time(len(data), 0.15, 0.15, data.split_gap)
    assert run.config["data"]["split_sizes"] == splits.sizes()
    X, y = data.X[splits.test], data.y.iloc[splits.test].to_numpy()
    last_value = X[:, -1, 0]  # one channel: the time stamps are left out
    baseline = float(np.mean((last_value - y) ** 2))
    model = float(np.mean((run.predict(X) - y) ** 2))
    assert model == pytest.approx(run.metrics["mse"], rel=1e-5)
    assert model < 0.6 * baseline, (model, baseline)


def test_multi_step_forecasts(sine_csv, tmp_path):
    run = deepfit.train(sine_csv, target="value", window=WINDOW, horizon=3, model="gru", width=16,
                        depth=1, epochs=2, out=tmp_path / "h3", **RUN)
    assert run.predictor.target.n_targets == 3
    data = load_source(sine_csv, target="value", window=WINDOW, horizon=3)
    assert list(data.y.columns) == ["value+1", "value+2", "value+3"]
    np.testing.assert_allclose(data.y.iloc[0], pd.read_csv(sine_csv)["value"][WINDOW : WINDOW + 3])
    assert deepfit.load(run.path).predict(data.X[:5]).shape == (5, 3)
    assert list(run.predictor.predict_frame(data.X[:5]).columns) == [f"prediction_{k}" for k in (1, 2, 3)]
    assert deepfit.evaluate(run.path, sine_csv)["n"] > 0  # the windows of a held-out series


# -------------------------------------------------------------------------- splits and windows
@pytest.mark.parametrize("rows,window,horizon,val,test", [
    (1000, 24, 1, 0.15, 0.15), (300, 30, 5, 0.2, 0.1), (120, 3, 1, 0.3, 0.0), (500, 50, 12, 0.1, 0.2)])
def test_no_training_window_overlaps_a_validation_or_test_window(rows, window, horizon, val, test):
    n = rows - window - horizon + 1
    splits = split_by_time(n, val, test, window + horizon - 1)
    span = window + horizon  # window i reads rows i … i+span-1 (inputs, then targets)
    rows_of = {name: {r for i in idx for r in range(i, i + span)}
               for name, idx in (("train", splits.train), ("val", splits.val), ("test", splits.test))}
    assert not rows_of["train"] & rows_of["val"] and not rows_of["train"] & rows_of["test"]
    assert not rows_of["val"] & rows_of["test"]
    assert splits.train.max() < splits.val.min() and (not test or splits.val.max() < splits.test.min())
    assert all(np.all(np.diff(idx) == 1) for idx in (splits.train, splits.val, splits.test) if len(idx))
    assert max(r for rs in rows_of.values() for r in rs) <= rows - 1


def test_too_short_a_series_is_a_split_error():
    with pytest.raises(SplitError, match="too few to split by time"):
        split_by_time(30, 0.15, 0.15, 12)


def test_windows_hold_the_rows_they_say(sine_csv):
    frame = pd.read_csv(sine_csv).assign(hour=lambda f: np.arange(len(f)) % 24)
    frame.loc[5, "hour"] = np.nan  # filled with the previous row's value
    data = load_source(frame, target="value", window=WINDOW)
    assert data.X.shape == (len(frame) - WINDOW, WINDOW, 2) and data.split_gap == WINDOW
    np.testing.assert_allclose(data.X[7, :, 0], frame["value"][7 : 7 + WINDOW], rtol=1e-6)
    np.testing.assert_array_equal(data.X[0, :8, 1], [0, 1, 2, 3, 4, 4, 6, 7])
    assert data.y.iloc[7] == pytest.approx(frame["value"][7 + WINDOW])


# --------------------------------------------------------------------------- normalisation
def test_per_channel_normalisation_is_fitted_on_the_training_windows_only(sine_csv):
    data = load_source(sine_csv, target="value", window=WINDOW)
    splits = split_by_time(len(data), 0.15, 0.15, data.split_gap)
    train = data.X[splits.train]
    pre = SequencePreprocessor().fit(train)
    np.testing.assert_allclose(pre.mean, train.mean(axis=(0, 1)), rtol=1e-5)
    np.testing.assert_allclose(pre.std, train.std(axis=(0, 1)), rtol=1e-4)
    z = pre.transform(train)
    np.testing.assert_allclose(z.mean(axis=(0, 1)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 1)), 1, atol=1e-4)
    shifted = data.X.copy()
    shifted[splits.test] += 100.0  # what the test windows hold does not change the fit
    np.testing.assert_allclose(SequencePreprocessor().fit(shifted[splits.train]).mean, pre.mean)
    again = SequencePreprocessor.from_dict(pre.to_dict())
    np.testing.assert_array_equal(again.transform(data.X[:4]), pre.transform(data.X[:4]))
    assert again.input_spec()["shape"] == (WINDOW, 1)
    np.testing.assert_array_equal(pre.transform(data.X[3:4, :, 0]), pre.transform(data.X[3:4]))  # [N, T]
    with pytest.raises(PredictInputError, match=r"\[N, 24, 1\]"):
        pre.transform(data.X[:, :10])


def test_missing_values_become_the_channel_mean():
    X = np.ones((10, 5, 2), dtype=np.float32)
    X[:, :, 1] = np.arange(5)
    X[0, 0, 1] = np.nan
    pre = SequencePreprocessor().fit(X)
    assert pre.mean[1] == pytest.approx(np.nanmean(X[:, :, 1]))
    assert pre.transform(X)[0, 0, 1] == 0.0 and np.isfinite(pre.transform(X)).all()
    np.testing.assert_array_equal(pre.transform(X[3]), pre.transform(X[3:4]))  # one sequence [T, C]


def test_multi_step_targets_round_trip_through_the_target_encoder():
    y = pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=["v+1", "v+2", "v+3"])
    encoder = TargetEncoder("regression").fit(y)
    assert encoder.n_outputs == 3
    z = encoder.transform(y)
    assert z.shape == (4, 3)
    again = TargetEncoder.from_dict(encoder.to_dict())
    np.testing.assert_allclose(again.inverse(z), y.to_numpy(), atol=1e-5)
