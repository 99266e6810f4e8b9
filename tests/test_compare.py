"""deepfit compare: one split and seed for every model, the baselines on the same rows, a
leaderboard in memory, on disk and on the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import StandardScaler

import deepfit
from deepfit.cli import main
from deepfit.data.split import split_indices
from deepfit.errors import SettingsError
from deepfit.tools.compare.comparison import COLUMNS, model_names

QUICK = {"epochs": 3, "patience": 2, "seed": 3, "report": False}  # no run reports: seconds of plots


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    return deepfit.compare("breast_cancer", models="mlp,resmlp", out=tmp_path_factory.mktemp("c") / "cmp",
                           budget_seconds=30, **QUICK)


def test_every_model_and_both_baselines_are_on_the_leaderboard(comparison):
    table = comparison.table
    assert list(table.columns) == COLUMNS
    assert sorted(table["model"]) == ["gradient_boosting", "linear", "mlp", "resmlp"]
    assert (table["metric"] == "accuracy").all()
    assert list(table["test_score"]) == sorted(table["test_score"], reverse=True)  # best first
    nets = table.set_index("model").loc[["mlp", "resmlp"]]
    assert (nets["best_epoch"].between(1, QUICK["epochs"])).all()
    assert (nets["params"] > 1000).all() and (nets["size_mb"] > 0).all()
    assert (table["latency_ms"] > 0).all() and (table["train_seconds"] > 0).all()
    files = {p.name for p in comparison.path.iterdir()}
    assert {"compare.csv", "compare.json", "compare.html", "plots", "mlp", "resmlp"} <= files
    on_disk = pd.read_csv(comparison.path / "compare.csv")
    assert list(on_disk["model"]) == list(table["model"])
    saved = json.loads((comparison.path / "compare.json").read_text())
    assert saved["metric"] == "accuracy" and len(saved["rows"]) == 4
    assert "score_vs_time" in (comparison.path / "compare.html").read_text() or \
        (comparison.path / "plots" / "score_vs_time.png").stat().st_size > 1000


def test_the_runs_share_one_split_and_reload_and_predict(comparison):
    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    n_test = None
    for name in ("mlp", "resmlp"):
        run_dir = comparison.runs[name]
        assert run_dir.parent == comparison.path
        config = json.loads((run_dir / "config.json").read_text())
        assert config["settings"]["seed"] == QUICK["seed"] and config["status"] == "finished"
        sizes = config["data"]["split_sizes"]
        assert n_test in (None, sizes["test"])
        n_test = sizes["test"]
        preds = deepfit.load(run_dir).predict(X.head(7))
        assert preds.shape == (7,) and set(preds) <= {"malignant", "benign"}


def test_the_linear_row_equals_scikit_learn_on_the_same_rows(comparison):
    """The reference: the same seeded split, scikit-learn's scaler and logistic regression."""
    X, y = load_breast_cancer(return_X_y=True)
    labels = pd.Series(np.array(["malignant", "benign"])[y])
    splits = split_indices(labels, "classification", 0.15, 0.15, QUICK["seed"])
    scaler = StandardScaler().fit(X[splits.train])
    model = LogisticRegression(max_iter=1000).fit(scaler.transform(X[splits.train]), y[splits.train])
    expected = accuracy_score(y[splits.test], model.predict(scaler.transform(X[splits.test])))
    row = comparison.table.set_index("model").loc["linear"]
    assert row["test_score"] == pytest.approx(expected, abs=1 / len(splits.test) + 1e-9)
    assert np.isnan(row["best_epoch"])


def test_model_names_resolve_aliases_and_reject_unknown_ones():
    assert model_names("mlp, resnet ,mlp") == ["mlp", "resnet18"]
    assert model_names(["cnn", "resnet"]) == ["cnn", "resnet18"]
    with pytest.raises(SettingsError, match="unknown model"):
        model_names("mlp,nosuch")
    with pytest.raises(SettingsError, match="own defaults"):
        deepfit.compare("iris", models="mlp", hidden=(8,))


def test_the_command_line_prints_the_leaderboard(tmp_path, capsys):
    code = main(["-q", "compare", "--dataset", "iris", "--models", "mlp", "--epochs", "2",
                 "--out", str(tmp_path / "c"), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert sorted(r["model"] for r in printed["rows"]) == ["gradient_boosting", "linear", "mlp"]
    assert main(["compare"]) == 2
    assert main(["compare", "iris", "--dataset", "wine"]) == 2
    assert main(["compare", "iris", "--models", "nosuch", "--out", str(tmp_path / "d")]) == 2
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_the_guides_command_on_images_mlp_flattens_them(tmp_path, capsys):
    """`compare --models mlp,cnn,resnet --dataset ...` as the guide writes it (on a tiny image
    set standing in for cifar10): the mlp takes the images flattened, resnet is resnet18."""
    rng = np.random.default_rng(4)
    X = rng.uniform(0, 1, (80, 3, 16, 16)).astype(np.float32)
    y = (X[:, 0, :8].mean(axis=(1, 2)) > X[:, 0, 8:].mean(axis=(1, 2))).astype(int)
    np.savez(tmp_path / "images.npz", X=X, y=y)
    code = main(["-q", "compare", "--dataset", str(tmp_path / "images.npz"), "--models", "mlp,cnn,resnet",
                 "--epochs", "1", "--out", str(tmp_path / "c"), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert sorted(r["model"] for r in printed["rows"]) == ["cnn", "mlp", "resnet18"]  # no baselines
    mlp = deepfit.load(tmp_path / "c" / "mlp")
    assert mlp.architecture["input_spec"]["modality"] == "image"
    assert mlp.predict(X[:5]).shape == (5,)


def test_data_root_and_download_pass_through_only_when_given():
    from deepfit.config import DataConfig, field_names
    from deepfit.tools.compare.comparison import _shared_settings, readable

    given = _shared_settings({"data_root": "/data", "download": None, "epochs": 2}, budget_seconds=5)
    assert given["data_root"] == "/data" and "download" not in given and given["max_seconds"] == 5
    assert ("data_root" in readable(given)) == ("data_root" in field_names(DataConfig))
    assert "data_root" not in _shared_settings({"epochs": 2}, None)


def test_a_signal_mid_comparison_keeps_the_run_to_resume(tmp_path, monkeypatch):
    from deepfit.training.trainer import Trainer, TrainingInterrupted

    original = Trainer._step

    def step_then_stop(self, loss):
        original(self, loss)
        if self.state.step == 3:
            self.stop_requested = True  # as the SIGTERM handler does

    monkeypatch.setattr(Trainer, "_step", step_then_stop)
    with pytest.raises(TrainingInterrupted):
        deepfit.compare("iris", models="mlp", out=tmp_path / "c", epochs=3, report=False)
    monkeypatch.setattr(Trainer, "_step", original)
    run = deepfit.train(resume=tmp_path / "c" / "mlp")  # the command the CLI prints
    assert json.loads((run.path / "config.json").read_text())["status"] == "finished"


def test_mlp_and_resmlp_flatten_sequences_and_images():
    from deepfit.models import InputSpec, OutputSpec, create

    for spec, x in ((InputSpec(3, 3, modality="sequence", shape=(10, 3)), torch.randn(4, 10, 3)),
                    (InputSpec(1, 1, modality="image", shape=(1, 8, 8)), torch.randn(4, 1, 8, 8))):
        for name in ("mlp", "resmlp"):
            model = create(name, spec, OutputSpec("classification", 5)).eval()
            assert model(x).shape == (4, 5)
            assert model.input.out_features == x[0].numel()
