"""Exact resume: an interrupted run, resumed, ends with the same weights bit for bit as an
uninterrupted one. Checkpoints are atomic and only count once complete."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import deepfit
from deepfit.errors import IntegrityError, RunDirError, SettingsError
from deepfit.training import trainer as trainer_module
from deepfit.training.checkpoint import (
    complete_checkpoints,
    latest_checkpoint,
    remove_stray_files,
    save_checkpoint,
)
from deepfit.training.trainer import Trainer, TrainingInterrupted

SETTINGS = {"epochs": 6, "patience": 100, "batch_size": 64, "progress": False, "seed": 5}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = deepfit.train("digits", out=tmp_path_factory.mktemp("u") / "run", **SETTINGS)
    return load_file(run.path / "model.safetensors"), run


def _interrupt_at(monkeypatch, step: int) -> None:
    """Ask the trainer to stop after optimizer step `step`, as a SIGTERM handler would."""
    original = Trainer._step

    def step_then_maybe_stop(self, loss):
        original(self, loss)
        if self.state.step + 1 == step:
            self.stop_requested = True

    monkeypatch.setattr(Trainer, "_step", step_then_maybe_stop)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("stop_step", [7, 40, 95])  # mid-epoch, at an epoch's end, late
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, monkeypatch, uninterrupted, stop_step):
    reference, reference_run = uninterrupted
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, stop_step)
        with pytest.raises(TrainingInterrupted):
            deepfit.train("digits", out=run_dir, **SETTINGS)
    assert json.loads((run_dir / "config.json").read_text())["status"] == "running"
    assert not (run_dir / "model.safetensors").exists()
    run = deepfit.train(resume=run_dir, progress=False)
    assert _same(load_file(run.path / "model.safetensors"), reference)
    assert [h["val_loss"] for h in run.history] == [h["val_loss"] for h in reference_run.history]
    assert run.metrics == reference_run.metrics


def test_negative_control_without_the_random_state_restore_resume_differs(tmp_path, monkeypatch, uninterrupted):
    reference, _ = uninterrupted
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 30)
        with pytest.raises(TrainingInterrupted):
            deepfit.train("digits", out=tmp_path / "run", **SETTINGS)
    torch.manual_seed(999)  # whatever the generator holds now, as in a fresh process
    monkeypatch.setattr(trainer_module, "restore_rng", lambda states: None)
    run = deepfit.train(resume=tmp_path / "run", progress=False)
    assert not _same(load_file(run.path / "model.safetensors"), reference)


def test_resume_with_conflicting_settings_is_a_named_error(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 3)
        with pytest.raises(TrainingInterrupted):
            deepfit.train("iris", out=tmp_path / "run", **SETTINGS)
    with pytest.raises(SettingsError, match=r"lr was 0.001, now 0.1"):
        deepfit.train(resume=tmp_path / "run", lr=0.1)
    with pytest.raises(SettingsError, match="data differ"):
        deepfit.train("wine", resume=tmp_path / "run")
    # Another thread count splits the sums differently: refused, naming the count started with.
    started = json.loads((tmp_path / "run" / "config.json").read_text())["train"]["threads"]
    with pytest.raises(SettingsError, match=rf"--threads {started + 1}: it was started with {started} "):
        deepfit.train(resume=tmp_path / "run", threads=started + 1)
    deepfit.train(resume=tmp_path / "run", progress=False, threads=started)  # harmless: fine


def test_a_finished_run_or_a_missing_one_cannot_be_resumed(tmp_path, uninterrupted):
    with pytest.raises(RunDirError, match="finished already"):
        deepfit.train(resume=uninterrupted[1].path)
    with pytest.raises(RunDirError, match="no such run directory"):
        deepfit.train(resume=tmp_path / "nope")


def _tiny_state(value: float) -> dict:
    return {"model": {"w": torch.full((3,), value)}, "epoch": int(value), "nested": {0: [1, 2.5]}}


def test_checkpoint_round_trip_keeps_types(tmp_path):
    save_checkpoint(tmp_path, "last", 1, _tiny_state(1.0))
    loaded = latest_checkpoint(tmp_path)
    assert torch.equal(loaded["model"]["w"], torch.ones(3))
    assert loaded["nested"] == {0: [1, 2.5]} and loaded["epoch"] == 1


def test_a_killed_checkpoint_write_leaves_the_previous_one_loadable(tmp_path):
    save_checkpoint(tmp_path, "last", 10, _tiny_state(1.0))
    # a write killed before its marker: the file is there, the marker is not
    newer = tmp_path / "last-000000020.safetensors"
    newer.write_bytes(b"half a checkpoint")
    (tmp_path / ".last-000000030.safetensors.abc.tmp").write_bytes(b"temp")
    assert latest_checkpoint(tmp_path)["epoch"] == 1
    assert sorted(remove_stray_files(tmp_path)) == [".last-000000030.safetensors.abc.tmp", newer.name]
    # a file replaced after its marker was written: the marker no longer matches, fall back
    save_checkpoint(tmp_path, "last", 40, _tiny_state(4.0))
    (tmp_path / "last-000000040.safetensors").write_bytes(b"garbage")
    assert latest_checkpoint(tmp_path)["epoch"] == 1


def test_two_generations_are_kept(tmp_path):
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, "last", step, _tiny_state(float(step)))
    assert [p.name for p in complete_checkpoints(tmp_path, "last")] == [
        "last-000000004.safetensors", "last-000000003.safetensors"]


def test_a_flipped_byte_in_the_weights_is_detected(tmp_path, uninterrupted):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(uninterrupted[1].path, run_dir)
    weights = run_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum"):
        deepfit.load(run_dir)


def test_initial_weights_from_safetensors_or_a_plain_pickle(tmp_path, fast):
    first = deepfit.train("iris", out=tmp_path / "a", **fast)
    weights = load_file(first.path / "model.safetensors")
    torch.save(weights, tmp_path / "w.pt")
    for path in (first.path / "model.safetensors", tmp_path / "w.pt"):
        run = deepfit.train("iris", init_weights=str(path), epochs=1, progress=False,
                            out=tmp_path / path.suffix.strip("."))
        assert f"initial weights from {path}" in run.config["decisions"]
    with pytest.raises(SettingsError, match="does not fit the model"):
        deepfit.train("wine", init_weights=str(tmp_path / "w.pt"), out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_an_fp16_run_resumes_exactly_with_its_grad_scaler(tmp_path, monkeypatch):
    settings = {**SETTINGS, "epochs": 2, "precision": "fp16", "device": "cpu"}
    reference = deepfit.train("digits", out=tmp_path / "ref", **settings)
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 25)
        with pytest.raises(TrainingInterrupted):
            deepfit.train("digits", out=tmp_path / "run", **settings)
    run = deepfit.train(resume=tmp_path / "run", progress=False)
    assert _same(load_file(run.path / "model.safetensors"),
                 load_file(reference.path / "model.safetensors"))
