"""--log tensorboard / mlflow: what the trackers hold, read back with their own readers and
compared with the run directory's history.csv and metrics.json."""

import json
import sys

import numpy as np
import pandas as pd
import pytest

import deepfit
from deepfit.errors import MissingExtraError, SettingsError


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("logged")
    uri = f"sqlite:///{root / 'mlruns.db'}"
    run = deepfit.train("iris", out=root / "run", epochs=4, progress=False, checkpoint=False,
                        log=("csv", "tensorboard", "mlflow"), mlflow_uri=uri)
    return run, uri


@pytest.mark.slow
def test_tensorboard_events_match_history(logged_run):
    from tbparse import SummaryReader
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, _ = logged_run
    history = pd.read_csv(run.path / "history.csv")
    scalars = SummaryReader(str(run.path / "tensorboard")).scalars
    for column in [c for c in history.columns if c != "epoch"]:
        logged = scalars[scalars.tag == column].sort_values("step")
        assert list(logged.step) == list(history.epoch), column
        np.testing.assert_allclose(logged.value, history[column], rtol=1e-6, err_msg=column)
    assert "lr" in set(scalars.tag)
    # the HParams plugin's final metrics are the test metrics
    metrics = json.loads((run.path / "metrics.json").read_text())
    final = scalars[scalars.tag == "test/accuracy"]
    assert final.value.iloc[0] == pytest.approx(metrics["accuracy"])
    hparams = SummaryReader(str(run.path / "tensorboard")).hparams  # the HParams plugin's data
    values = dict(zip(hparams.tag, hparams.value))
    assert values["lr"] == pytest.approx(1e-3) and values["epochs"] == 4
    events = EventAccumulator(str(run.path / "tensorboard"), size_guidance={"images": 0})
    images = set(events.Reload().Tags()["images"])
    assert {f"plots/{p.stem}" for p in (run.path / "plots").glob("*.png")} <= images
    assert any("confusion" in tag for tag in images)


@pytest.mark.slow
def test_mlflow_run_matches_metrics_and_history(logged_run):
    from mlflow.tracking import MlflowClient

    run, uri = logged_run
    client = MlflowClient(tracking_uri=uri)
    (found,) = client.search_runs([client.get_experiment_by_name("deepfit").experiment_id])
    assert found.info.status == "FINISHED"
    metrics = json.loads((run.path / "metrics.json").read_text())
    for key in ("accuracy", "f1_macro", "log_loss"):
        assert found.data.metrics[f"test_{key}"] == pytest.approx(metrics[key])
    history = pd.read_csv(run.path / "history.csv")
    val_loss = client.get_metric_history(found.info.run_id, "val_loss")
    assert [m.step for m in val_loss] == list(history.epoch)
    np.testing.assert_allclose([m.value for m in val_loss], history.val_loss, rtol=1e-6)
    assert found.data.params["epochs"] == "4" and found.data.params["lr"] == "0.001"
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"model.safetensors", "metrics.json", "config.json", "history.csv"} <= artifacts


def test_a_missing_tracker_package_is_the_named_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    with pytest.raises(MissingExtraError, match=r"deepfit\[mlflow\]"):
        deepfit.train("iris", out=tmp_path / "run", epochs=1, log=("mlflow",))
    assert not (tmp_path / "run").exists()  # stopped before anything was written


def test_cli_without_tensorboard_says_which_extra(monkeypatch, tmp_path, capsys, keep_logging):
    from deepfit.cli import main

    monkeypatch.setitem(sys.modules, "tensorboard", None)
    code = main(["train", "iris", "--epochs", "1", "--log", "tensorboard", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "pip install 'deepfit[tensorboard]'" in err
    assert not (tmp_path / "run").exists()


def test_unknown_logger_and_bad_step_count_are_settings_errors(tmp_path):
    with pytest.raises(SettingsError, match="log must name"):
        deepfit.train("iris", out=tmp_path / "a", epochs=1, log=("wandb",))
    with pytest.raises(SettingsError, match="log_every_n_steps"):
        deepfit.train("iris", out=tmp_path / "b", epochs=1, log_every_n_steps=0)


def test_per_step_logging_only_when_asked(tmp_path):
    from tbparse import SummaryReader

    quiet = deepfit.train("iris", out=tmp_path / "quiet", epochs=2, progress=False,
                          checkpoint=False, report=False, log=("tensorboard",))
    steps = deepfit.train("iris", out=tmp_path / "steps", epochs=2, progress=False,
                          checkpoint=False, report=False, log=("tensorboard",), log_every_n_steps=1)
    tags = set(SummaryReader(str(quiet.path / "tensorboard")).scalars.tag)
    assert not any(t.startswith("step/") for t in tags)
    logged = SummaryReader(str(steps.path / "tensorboard")).scalars
    per_step = logged[logged.tag == "step/train_loss_running"]
    assert len(per_step) == (steps.config["data"]["split_sizes"]["train"] + 63) // 64 * 2
