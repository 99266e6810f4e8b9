"""Where a run's time goes (core/timings.py): exclusive stage times that add up to the total,
saved in config.json for every run, printed by `deepfit train --timings`, and a warning for a
stage outside the steps that is slow."""

from __future__ import annotations

import json

import pytest

import deepfit
from deepfit.cli import main
from deepfit.core import timings as timings_module
from deepfit.core.timings import OUTSIDE_STEPS, Timings, stage

STAGES = ("read", "audit", "preprocess", "threads", "steps", "evaluate", "save", "report")


@pytest.fixture
def clock(monkeypatch):
    """A clock that only moves when the test says so."""
    now = [100.0]
    monkeypatch.setattr(timings_module.time, "perf_counter", lambda: now[0])
    return now


def test_nested_stages_are_exclusive_and_add_up_to_the_total(clock):
    timings = Timings()
    with timings.active():
        with stage("read"):
            clock[0] += 2.0
        clock[0] += 0.5  # claimed by no stage: "other"
        with stage("steps"):
            clock[0] += 10.0
            with stage("checkpoint"):
                clock[0] += 1.0
        with stage("read"):  # a stage met twice adds up
            clock[0] += 1.0
    saved = timings.to_dict()
    assert saved == {"read": 3.0, "steps": 10.0, "checkpoint": 1.0, "other": 0.5, "total": 14.5,
                     OUTSIDE_STEPS: 4.5}
    with stage("read"):  # no active Timings: nothing recorded
        clock[0] += 5.0
    assert timings.to_dict()["read"] == 3.0


def test_slow_stages_outside_the_steps_are_named(clock):
    timings = Timings()
    with timings.active():
        with stage("report"):
            clock[0] += timings_module.SLOW_STAGE_S + 1
        with stage("steps"):
            clock[0] += 100.0
    assert timings.slow_stages() == [("report", timings_module.SLOW_STAGE_S + 1)]


def test_every_run_saves_its_stage_times(tmp_path):
    run = deepfit.train("iris", out=tmp_path / "run", epochs=2, progress=False)
    saved = json.loads((run.path / "config.json").read_text())["timings"]
    assert set(STAGES) <= set(saved) and run.config["timings"] == saved
    parts = sum(v for k, v in saved.items() if k not in ("total", OUTSIDE_STEPS))
    assert parts == pytest.approx(saved["total"], abs=2e-3)
    assert saved[OUTSIDE_STEPS] == pytest.approx(saved["total"] - saved["steps"], abs=1e-3)
    assert all(v >= 0 for v in saved.values())


def test_a_slow_stage_is_a_warning_of_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(timings_module, "SLOW_STAGE_S", 0.0)  # every stage counts as slow
    run = deepfit.train("iris", out=tmp_path / "run", epochs=1, progress=False)
    warnings = json.loads((run.path / "config.json").read_text())["warnings"]
    assert any(w.startswith("the audit stage took") and "150 rows" in w for w in warnings)
    assert not any(w.startswith("the steps stage") for w in warnings)


def test_the_cli_prints_the_timings_when_asked(tmp_path, capsys):
    assert main(["train", "iris", "--epochs", "1", "--timings", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "timings (s)" in out and "import" in out and "outside the steps" in out
    assert main(["train", "iris", "--epochs", "1", "--out", str(tmp_path / "q")]) == 0
    assert "timings (s)" not in capsys.readouterr().out
    assert "import" in json.loads((tmp_path / "q" / "config.json").read_text())["timings"]
