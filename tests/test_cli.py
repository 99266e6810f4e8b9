"""The command line as a user types it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from deepfit.cli import main
from deepfit.modalities import load_source


def test_train_predict_evaluate(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "iris", "--epochs", "15", "--hidden", "32,16", "--out", str(run)]) == 0
    out, err = capsys.readouterr()
    assert "test metrics" in out and "accuracy" in out and f"run saved to {run}" in out
    assert "task inferred: classification" in err and "splits: 104 train, 23 validation, 23 test" in err

    data = load_source("iris")
    data.X.assign(target=data.y).to_csv(tmp_path / "iris.csv", index=False)
    assert main(["predict", str(run), str(tmp_path / "iris.csv"), "-o", str(tmp_path / "p.csv")]) == 0
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert list(predictions.columns) == ["prediction", "proba_setosa", "proba_versicolor", "proba_virginica"]
    assert len(predictions) == 150
    assert (predictions.filter(like="proba_").sum(axis=1) - 1).abs().max() < 1e-6

    capsys.readouterr()
    assert main(["evaluate", str(run), str(tmp_path / "iris.csv")]) == 0
    out, _ = capsys.readouterr()
    assert "accuracy" in out and "150" in out


def test_predict_to_stdout_for_regression(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["-q", "train", "diabetes", "--epochs", "3", "--out", str(run)]) == 0
    _, err = capsys.readouterr()
    assert err == ""  # --quiet: no decisions printed
    data = load_source("diabetes")
    data.X.head(4).to_csv(tmp_path / "x.csv", index=False)
    assert main(["predict", str(run), str(tmp_path / "x.csv")]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == "prediction" and len(out.splitlines()) == 5
    assert main(["predict", str(run), str(tmp_path / "x.csv"), "-o", "-"]) == 0  # `-`: stdout too
    dashed, _ = capsys.readouterr()
    assert dashed == out and not (Path.cwd() / "-").exists()


def test_model_settings_through_set(tmp_path):
    assert main(["train", "wine", "--epochs", "2", "--set", "hidden=8", "--out", str(tmp_path / "r")]) == 0
