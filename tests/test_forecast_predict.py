"""Forecasting from a CSV time series with a trained run (deepfit/forecast.py): the future after
the series' end, the rolling backtest over every window, and the named errors of a bad series."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import deepfit
from deepfit.cli import main
from deepfit.core.notes import Notes
from deepfit.data.tables import read_table
from deepfit.errors import PredictInputError, SettingsError
from deepfit.lifecycle.predictor import Predictor
from deepfit.modalities import load_source

W, H = 12, 3


pytestmark = pytest.mark.usefixtures("keep_logging")


def sine_frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    t = np.arange(n)
    return pd.DataFrame({
        "time": pd.date_range("2024-01-01", periods=n, freq="h").astype(str),
        "value": np.sin(2 * np.pi * t / 25) + rng.normal(0, 0.1, n),
        "load": np.cos(2 * np.pi * t / 40) + rng.normal(0, 0.1, n),
    })


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("forecast")
    path = root / "series.csv"
    sine_frame().to_csv(path, index=False)
    run = deepfit.train(path, target="value", window=W, horizon=H, epochs=2, width=8,
                        progress=False, report=False, checkpoint=False, out=root / "run")
    return run, path


def test_the_run_saves_what_forecasting_needs(trained):
    run, _ = trained
    series = Predictor.load(run.path).series
    assert series == {"channels": ["value", "load"], "target": "value", "window": W, "horizon": H,
                      "time_column": "time", "written": {}}
    assert run.config["data"]["series"] == series


def test_the_future_forecast_has_one_row_per_step_after_the_last_window(trained):
    run, path = trained
    frame = deepfit.predict(run.path, path)
    assert list(frame.columns) == ["step", "row", "time", "value_forecast"]
    assert frame["step"].tolist() == [1, 2, 3] and frame["row"].tolist() == [300, 301, 302]
    # the hourly series goes on: 2024-01-01 00:00 + 300 h
    assert frame["time"].tolist() == list(pd.date_range("2024-01-13 12:00", periods=H, freq="h"))
    last_window = load_source(path, target="value", window=W, horizon=H).X[-1:]  # rows 285 … 296
    series = pd.read_csv(path)[["value", "load"]].to_numpy(np.float32)
    np.testing.assert_array_equal(last_window[0], series[-W - H : -H])
    expected = run.predictor.predict(series[None, -W:])[0]
    np.testing.assert_array_equal(frame["value_forecast"].to_numpy(), expected)
    assert np.allclose(deepfit.load(run.path).forecast(pd.read_csv(path))["value_forecast"], expected)


def test_all_windows_equal_the_predictor_on_the_training_windows(trained):
    run, path = trained
    frame = deepfit.predict(run.path, path, all_windows=True)
    assert list(frame.columns) == ["forecast_start", "step", "row", "time", "value_forecast",
                                   "value_actual"]
    n_windows = 300 - W + 1  # every window of W rows, the last ones reaching past the end
    assert len(frame) == n_windows * H
    data = load_source(path, target="value", window=W, horizon=H)  # the training code's windows
    wide = frame.pivot(index="forecast_start", columns="step", values="value_forecast")
    assert wide.index.tolist() == list(range(W, 301))
    # equal up to float32 rounding: the model sees the windows in batches of another size
    np.testing.assert_allclose(wide.to_numpy()[: len(data)], run.predictor.predict(data.X),
                               rtol=1e-5, atol=1e-6)
    actual = frame.pivot(index="forecast_start", columns="step", values="value_actual").to_numpy()
    np.testing.assert_allclose(actual[: len(data)], data.y.to_numpy())
    assert np.isnan(actual[-1]).all() and np.isnan(actual[len(data):]).any()


def test_reordered_and_extra_columns_are_read_by_name(trained):
    run, path = trained
    frame = pd.read_csv(path)
    shuffled = frame[["load", "time", "value"]].assign(note="x")
    pd.testing.assert_frame_equal(deepfit.predict(run.path, shuffled), deepfit.predict(run.path, path))


def test_a_series_without_a_time_column_is_numbered_by_row(tmp_path):
    frame = sine_frame(120).drop(columns=["time"])
    frame.to_csv(tmp_path / "s.csv", index=False)
    run = deepfit.train(tmp_path / "s.csv", target="value", window=6, epochs=1, width=4,
                        progress=False, report=False, checkpoint=False, out=tmp_path / "run")
    out = deepfit.predict(run.path, tmp_path / "s.csv")
    assert list(out.columns) == ["step", "row", "value_forecast"] and out["row"].tolist() == [120]


def test_a_missing_column_is_named_and_the_cli_exits_2(trained, tmp_path, capsys):
    run, path = trained
    short = tmp_path / "no_load.csv"
    pd.read_csv(path).drop(columns=["load"]).to_csv(short, index=False)
    with pytest.raises(PredictInputError, match="lacks 1 column.*load"):
        deepfit.predict(run.path, short)
    assert main(["predict", str(run.path), str(short)]) == 2
    assert "load" in capsys.readouterr().err


def test_too_few_rows_and_text_values_are_named_errors(trained, tmp_path):
    run, path = trained
    frame = pd.read_csv(path)
    with pytest.raises(PredictInputError, match=f"has {W - 1} row.*at least {W}"):
        deepfit.predict(run.path, frame.tail(W - 1))
    bad = frame.astype({"load": object})
    bad.loc[290, "load"] = "n/a?"
    with pytest.raises(PredictInputError, match="'load'.*n/a"):
        deepfit.predict(run.path, bad)
    gappy = frame.copy()
    gappy.loc[295, "load"] = np.nan  # a gap is filled as in training, not an error
    assert len(deepfit.predict(run.path, gappy)) == H


def test_the_cli_writes_the_forecast_and_the_backtest(trained, capsys):
    run, path = trained
    assert main(["-q", "predict", str(run.path), str(path)]) == 0
    future = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert future["row"].tolist() == [300, 301, 302]
    assert future["time"].tolist() == ["2024-01-13 12:00:00", "2024-01-13 13:00:00", "2024-01-13 14:00:00"]
    assert main(["-q", "predict", str(run.path), str(path), "--all-windows"]) == 0
    assert len(pd.read_csv(io.StringIO(capsys.readouterr().out))) == (300 - W + 1) * H


def test_all_windows_is_for_time_series_runs_only(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    run = deepfit.train(X, y=X[:, 0] > 0, epochs=1, progress=False, report=False,
                        checkpoint=False, out=tmp_path / "table")
    with pytest.raises(SettingsError, match="all-windows"):
        deepfit.predict(run.path, pd.DataFrame(X, columns=run.predictor.preprocessor.columns),
                        all_windows=True)
    with pytest.raises(PredictInputError, match="not trained on a time series"):
        run.predictor.forecast(pd.DataFrame(X))


def test_a_series_file_reads_its_numbers_as_the_training_file_did(tmp_path):
    """A ';' series written with thousands dots and decimal commas: a later file whose numbers
    happen to hold no comma (1.250) is still read as the training file was (1250, not 1.25)."""
    frame = sine_frame(120)
    frame[["value", "load"]] = (frame[["value", "load"]] * 1000 + 3000).round(0)  # 1,700-4,300

    def european(v: float) -> str:
        return f"{v:,.1f}".replace(",", "_").replace(".", ",").replace("_", ".")

    text = frame.assign(value=frame["value"].map(european), load=frame["load"].map(european))
    text.to_csv(tmp_path / "train.csv", sep=";", index=False)
    run = deepfit.train(tmp_path / "train.csv", target="value", window=W, epochs=1, width=8,
                        progress=False, report=False, checkpoint=False, out=tmp_path / "run")
    assert run.predictor.series["written"] == {"value": "decimal_comma", "load": "decimal_comma"}
    later = frame.tail(W).copy()
    later[["value", "load"]] = later[["value", "load"]].astype(int)
    with_dots = later.assign(value=later["value"].map(lambda v: f"{v:,}".replace(",", ".")),
                             load=later["load"].map(lambda v: f"{v:,}".replace(",", ".")))
    with_dots.to_csv(tmp_path / "later.csv", sep=";", index=False)
    alone = read_table(tmp_path / "later.csv", Notes(live=False))  # the negative control
    assert alone["value"].max() < 10 and later["value"].min() > 1000
    from_file = deepfit.load(run.path).forecast(tmp_path / "later.csv")
    from_numbers = deepfit.load(run.path).forecast(later.astype({"value": float, "load": float}))
    np.testing.assert_allclose(from_file["value_forecast"], from_numbers["value_forecast"], rtol=1e-6)
