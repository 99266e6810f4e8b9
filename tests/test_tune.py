"""deepfit tune (tools/tune/): the search beats the defaults or says not, pruning is recorded, the
test split is evaluated once per study, bad spaces stop before any trial, a killed study resumes
from its database, and two workers share one SQLite file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

import deepfit
from deepfit.errors import SettingsError
from deepfit.lifecycle.predictor import Predictor
from deepfit.tools.tune import study as study_module
from deepfit.training.callbacks.pruning import Pruning

pytestmark = pytest.mark.usefixtures("one_thread")
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _trials(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as con:
        return con.execute("select number, state from trials order by number").fetchall()


def test_a_short_tune_reports_against_the_defaults_and_reads_the_test_split_once(tmp_path, monkeypatch):
    calls = []
    original = Predictor.evaluation
    monkeypatch.setattr(Predictor, "evaluation", lambda self, X, y: calls.append(len(X)) or original(self, X, y))
    result = deepfit.tune("breast_cancer", trials=3, epochs=3, out=tmp_path / "t", pruner="none")
    assert calls == [86]  # the 86 test rows, once, for the best trial only
    rows = result["leaderboard"]
    assert sorted(r["trial"] for r in rows) == [0, 1, 2] and rows[0]["trial"] == result["best_trial"]
    default = next(r for r in rows if r["defaults"])
    assert default["trial"] == 0 and default["params"] == {}
    if result["best_value"] < default["value"]:
        assert result["beats_default"] is True and "beat the defaults" in result["verdict"]
    else:
        assert result["beats_default"] is False and "no trial beat" in result["verdict"]
    # every trial a run directory whose metrics are validation ones, never the test split's
    for r in rows:
        metrics = json.loads((Path(r["run_dir"]) / "metrics.json").read_text())
        assert (Path(r["run_dir"]) / "model.safetensors").exists()
        assert "val_loss" in metrics and "accuracy" not in metrics and "checklist" not in metrics
    assert (tmp_path / "t" / "tune.json").exists() and (tmp_path / "t" / "tune.html").exists()
    # fANOVA over the two searched trials (the defaults trial draws no settings): every searched
    # setting has an importance, and they sum to 1 (Optuna normalises them)
    assert set(result["importances"]) == set(result["space"]) and result["importances_note"] is None
    assert sum(result["importances"].values()) == pytest.approx(1.0)
    assert set(result["plots"]) == {"history", "parallel"}
    assert result["command"].startswith("deepfit train breast_cancer") and "--epochs 3" in result["command"]
    # rerunning continues the finished study: no new trial, the test split not read again
    again = deepfit.tune("breast_cancer", trials=3, epochs=3, out=tmp_path / "t", pruner="none")
    assert calls == [86] and again["test_metrics"] == result["test_metrics"]
    assert len(_trials(tmp_path / "t" / "study.db")) == 3


def test_a_pruned_trial_is_recorded_as_pruned(tmp_path, monkeypatch):
    class PruneTrialOne(Pruning):  # the plant: the pruner says so for trial 1, after its epoch 1
        def on_epoch_end(self, trainer, state, logs):
            super().on_epoch_end(trainer, state, logs)
            if self.trial.number == 1 and not self.pruned:
                self.pruned, state.should_stop, state.stop_reason = True, True, "pruned (planted)"

    monkeypatch.setattr(study_module, "Pruning", PruneTrialOne)
    result = deepfit.tune("breast_cancer", trials=3, epochs=3, out=tmp_path / "t")
    states = dict(_trials(tmp_path / "t" / "study.db"))
    assert states[1] == "PRUNED" and result["pruned"] == 1
    pruned = next(r for r in result["leaderboard"] if r["trial"] == 1)
    assert pruned["state"] == "pruned" and pruned["epochs"] == 1
    assert (Path(pruned["run_dir"]) / "config.json").exists()  # still a normal run directory


def test_an_unknown_space_name_is_a_settings_error_before_any_trial(tmp_path):
    with pytest.raises(SettingsError, match="unknown setting in the search space: nope"):
        deepfit.tune("breast_cancer", trials=2, epochs=2, out=tmp_path / "t", space={"nope": [1, 2]})
    assert not (tmp_path / "t").exists()
    space = tmp_path / "space.json"
    space.write_text('{"lr": {"low": 1e-3, "high": 1e-2, "log": true}, "dropout": 0.1, "batch_size": [32]}')
    from deepfit.tools.tune.space import build_space

    ranges, fixed = build_space("mlp", {"epochs": 3}, space)
    assert ranges["lr"].low == 1e-3 and fixed == {"epochs": 3, "dropout": 0.1}
    assert ranges["batch_size"].choices == (32,) and "weight_decay" in ranges and "depth" in ranges


def _running_and_drawn(db: Path) -> int:
    """Running trials whose settings are all drawn: the objective sets the run_dir attribute after
    the last suggest_* (killing between two suggest_* calls would retry only those drawn)."""
    with sqlite3.connect(db) as con:
        return con.execute("select count(*) from trial_user_attributes where key = 'run_dir' and "
                           "trial_id in (select trial_id from trials where state = 'RUNNING')"
                           ).fetchone()[0]


def _tune_command(out: Path, trials: int, *extra: str) -> list[str]:
    # batch size fixed small so that every trial trains for seconds even on a fast machine: a trial
    # of batch 256 finished in under a second, before the kill could land inside it
    space = out.parent / "space.json"
    space.write_text('{"batch_size": [16]}')
    return [sys.executable, "-m", "deepfit", "tune", "breast_cancer", "--trials", str(trials),
            "--epochs", "60", "--patience", "60", "--pruner", "none", "--space", str(space),
            "--out", str(out), *extra]


@pytest.mark.slow
def test_sigkill_mid_trial_then_the_same_command_finishes_the_study(tmp_path):
    out, env = tmp_path / "t", {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(_tune_command(out, 3), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:  # kill once a trial is complete and the next one running
        time.sleep(0.2)
        if (out / "study.db").exists():
            try:
                states = [s for _, s in _trials(out / "study.db")]
            except sqlite3.Error:
                continue
            if "COMPLETE" in states and states[-1] == "RUNNING" and _running_and_drawn(out / "study.db"):
                break  # all its settings are drawn, so it is training: kill at once
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {n: s for n, s in _trials(out / "study.db")}
    done_before = [n for n, s in before.items() if s == "COMPLETE"]
    killed = [n for n, s in before.items() if s == "RUNNING"]
    assert done_before and len(killed) == 1
    subprocess.run(_tune_command(out, 3), env=env, check=True, capture_output=True, timeout=300)
    after = dict(_trials(out / "study.db"))
    assert all(after[n] == "COMPLETE" for n in done_before)  # every completed trial kept
    assert after[killed[0]] == "FAIL"  # the interrupted one failed, and retried with its settings
    assert sum(s == "COMPLETE" for s in after.values()) == 3
    study = optuna.load_study(study_name="tune-breast_cancer", storage=f"sqlite:///{out / 'study.db'}")
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed[0]]
    assert len(retried) == 1 and retried[0].params == study.trials[killed[0]].params


@pytest.mark.slow
def test_two_workers_on_one_sqlite_file_complete_n_trials_without_duplicates(tmp_path):
    out = tmp_path / "t"
    result = deepfit.tune("breast_cancer", trials=4, epochs=3, jobs=2, out=out, pruner="none")
    rows = _trials(out / "study.db")
    numbers = [n for n, _ in rows]
    assert len(numbers) == len(set(numbers)) == 4 and all(s == "COMPLETE" for _, s in rows)
    assert len(result["leaderboard"]) == 4


@pytest.mark.parametrize("name", deepfit.models.registry.available())
def test_each_models_space_is_its_own_settings_plus_the_trainers(name):
    from deepfit.core.space import Choice, Float, Int
    from deepfit.models.registry import resolve_settings, search_space
    from deepfit.tools.tune.space import build_space
    from deepfit.training.optim import TRAIN_SPACE

    own, defaults = search_space(name), resolve_settings(name, {})
    assert set(own) <= set(defaults)  # ranges only for settings the model takes
    ranges, fixed = build_space(name, {"lr": 1e-3}, None)  # a setting given is fixed, not searched
    assert set(ranges) == (set(TRAIN_SPACE) | set(own)) - {"lr"} and fixed == {"lr": 1e-3}
    for key, r in own.items():  # each range is well formed
        if isinstance(r, (Float, Int)):
            assert r.low < r.high and (not r.log or r.low > 0), (key, r)
        else:
            assert isinstance(r, Choice) and len(r.choices) >= 1, (key, r)
