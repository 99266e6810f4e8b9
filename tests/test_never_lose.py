"""Never lose a run (issue #24): a failed write keeps every complete checkpoint; SIGTERM at each
stage boundary of `train` ends in a clean removal or a resumable checkpoint; damaged
checkpoints and config.json files are named; a run killed before its first checkpoint is
trained again from the start by --resume; every resumed run ends bit-identical to an
uninterrupted one. Disk-full is planted by an fsync that raises ENOSPC for one file."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import deepfit
from deepfit.cli import main
from deepfit.errors import RunDirError, StorageError
from deepfit.evaluation import report as report_module
from deepfit.lifecycle import fit as fit_module
from deepfit.lifecycle import train as train_module
from deepfit.training.checkpoint import complete_checkpoints
from deepfit.training.trainer import Trainer, TrainingInterrupted

SETTINGS = {"epochs": 6, "patience": 100, "batch_size": 64, "progress": False, "seed": 5}
LAST = r"/checkpoints/\.last-\d+\.safetensors\."  # the temporary file of a last-* checkpoint


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = deepfit.train("digits", out=tmp_path_factory.mktemp("u") / "run", **SETTINGS)
    return load_file(run.path / "model.safetensors"), run


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _resumed_equals(run_dir: Path, uninterrupted) -> deepfit.Run:
    run = deepfit.train(resume=run_dir, progress=False)
    reference, reference_run = uninterrupted
    assert _same(load_file(run.path / "model.safetensors"), reference)
    assert run.metrics == reference_run.metrics
    return run


def _disk_full_for(monkeypatch, pattern: str, after: int = 0) -> None:
    """fsync raises ENOSPC for files whose path matches `pattern`, from the (after+1)-th on."""
    real, seen = os.fsync, []

    def fsync(fd: int) -> None:
        if re.search(pattern, os.readlink(f"/proc/self/fd/{fd}")):
            seen.append(fd)
            if len(seen) > after:
                raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_disk_full_during_a_checkpoint_keeps_the_earlier_ones_and_resumes_identically(
        tmp_path, monkeypatch, uninterrupted):
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        _disk_full_for(patch, LAST, after=2)  # the 3rd epoch's checkpoint fails
        with pytest.raises(StorageError) as caught:
            deepfit.train("digits", out=run_dir, **SETTINGS)
    message = str(caught.value)
    assert "No space left on device" in message and f"deepfit train --resume {run_dir}" in message
    kept = complete_checkpoints(run_dir / "checkpoints", "last")
    assert [p.name for p in kept] == ["last-000000040.safetensors", "last-000000020.safetensors"]
    assert not [p for p in run_dir.rglob(".*.tmp")]  # the failed write left no temporary file
    run = _resumed_equals(run_dir, uninterrupted)
    assert run.config["status"] == "finished"


def test_disk_full_before_any_checkpoint_removes_the_run_directory(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        _disk_full_for(patch, r"/run/\.config\.json\.")
        with pytest.raises(StorageError, match=r"nothing resumable had been written, so .* is removed"):
            deepfit.train("digits", out=tmp_path / "run", **SETTINGS)
    assert not (tmp_path / "run").exists()


def test_disk_full_is_one_line_and_exit_2_on_the_command_line(tmp_path, monkeypatch, capsys):
    _disk_full_for(monkeypatch, LAST, after=1)
    code = main(["train", "iris", "--out", str(tmp_path / "run"), "--epochs", "4", "--no-report",
                 "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("deepfit: error: cannot write ")
    assert "--resume" in err[0] and (tmp_path / "run" / "config.json").exists()


def _sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def _sigterm_before(monkeypatch, module, name: str) -> None:
    original = getattr(module, name)

    def signalled(*args, **kwargs):
        _sigterm()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, signalled)


@pytest.mark.parametrize("where", [
    (train_module, "config_record"),      # the run directory made, config.json not yet written
    (fit_module, "create_optimizer"),     # config.json written, before the first step
])
def test_sigterm_before_the_first_checkpoint_removes_the_run_directory(tmp_path, monkeypatch, where):
    with monkeypatch.context() as patch:
        _sigterm_before(patch, *where)
        with pytest.raises(KeyboardInterrupt):
            deepfit.train("digits", out=tmp_path / "run", **SETTINGS)
    assert not (tmp_path / "run").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are given back
    deepfit.train("iris", out=tmp_path / "run", epochs=2, progress=False, report=False)  # free


def test_sigterm_mid_epoch_and_during_the_final_save_resume_identically(tmp_path, monkeypatch, uninterrupted):
    original = Trainer._step

    def step(self, loss):
        original(self, loss)
        if self.state.step + 1 == 27:
            _sigterm()

    with monkeypatch.context() as patch:  # mid-epoch: the step finishes, a checkpoint is written
        patch.setattr(Trainer, "_step", step)
        with pytest.raises(TrainingInterrupted):
            deepfit.train("digits", out=tmp_path / "mid", **SETTINGS)
    _resumed_equals(tmp_path / "mid", uninterrupted)
    with monkeypatch.context() as patch:  # training done, the model being saved
        _sigterm_before(patch, report_module, "write_run_report")
        with pytest.raises(TrainingInterrupted, match="last complete checkpoint is kept") as caught:
            deepfit.train("digits", out=tmp_path / "save", **SETTINGS)
    assert caught.value.args[1] == tmp_path / "save"
    assert json.loads((tmp_path / "save" / "config.json").read_text())["status"] == "running"
    _resumed_equals(tmp_path / "save", uninterrupted)


def _interrupted(run_dir: Path, monkeypatch, at_step: int) -> None:
    original = Trainer._step

    def step(self, loss):
        original(self, loss)
        if self.state.step + 1 == at_step:
            self.stop_requested = True

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_step", step)
        with pytest.raises(TrainingInterrupted):
            deepfit.train("digits", out=run_dir, **SETTINGS)


def test_a_run_killed_before_its_first_checkpoint_trains_again_on_resume(tmp_path, monkeypatch, uninterrupted):
    run_dir = tmp_path / "run"
    _interrupted(run_dir, monkeypatch, 7)
    # As SIGKILL during the first checkpoint's write leaves it: no marker, a temporary file.
    for marker in (run_dir / "checkpoints").glob("*.done"):
        marker.unlink()
    (run_dir / ".model.safetensors.x1.tmp").write_bytes(b"half")
    run = _resumed_equals(run_dir, uninterrupted)
    assert any("holds no complete checkpoint" in d and "again from the start" in d
               for d in run.config["decisions"])
    assert any("temporary file" in d for d in run.config["decisions"])
    assert not (run_dir / ".model.safetensors.x1.tmp").exists()


def test_a_damaged_newest_checkpoint_is_skipped_with_a_warning_and_all_damaged_is_named(
        tmp_path, monkeypatch, uninterrupted, caplog):
    run_dir = tmp_path / "run"
    _interrupted(run_dir, monkeypatch, 45)  # checkpoints after step 40 (epoch 2) and at 45
    newest, older = complete_checkpoints(run_dir / "checkpoints", "last")
    assert newest.name == "last-000000045.safetensors"
    data = bytearray(newest.read_bytes())
    data[-1] ^= 0xFF
    newest.write_bytes(bytes(data))
    other = shutil.copytree(run_dir, tmp_path / "copy")
    with caplog.at_level(logging.WARNING, logger="deepfit"):
        _resumed_equals(run_dir, uninterrupted)  # from the end of epoch 2
    assert any("skipped the damaged checkpoint last-000000045.safetensors: its checksum does not "
               "match" in r.getMessage() for r in caplog.records)
    (other / "checkpoints" / older.name).write_bytes(b"not safetensors")
    (other / "checkpoints" / newest.with_suffix(".done").name).write_text("[1]")
    with pytest.raises(RunDirError, match=r"no checkpoint is usable: last-000000045.safetensors: its "
                                          r"marker or header is malformed .*; last-000000040.safetensors:"):
        deepfit.train(resume=other, progress=False)


@pytest.mark.parametrize("edit, says", [
    (lambda r: r.pop("settings"), "'settings' is missing"),
    (lambda r: r["data"].pop("fingerprint"), "'data.fingerprint' is missing"),
    (lambda r: r.__setitem__("train", "x"), "'train' is a str, not a dict"),
    (lambda r: [1, 2], "holds no JSON object"),
    (lambda r: r["settings"].__setitem__("epochs", "x"), "its settings do not make a run"),
    (lambda r: r["settings"].__setitem__("model", 5), "its settings do not make a run"),
    (lambda r: r["train"].__setitem__("threads", "two"), "'train.threads' is 'two'"),
])
def test_a_config_json_without_its_keys_is_a_named_error(tmp_path, monkeypatch, edit, says):
    run_dir = tmp_path / "run"
    _interrupted(run_dir, monkeypatch, 3)
    record = json.loads((run_dir / "config.json").read_text())
    edited = edit(record)
    (run_dir / "config.json").write_text(json.dumps(edited if isinstance(edited, list) else record))
    with pytest.raises(RunDirError, match=f"config.json is damaged: .*{says}"):
        deepfit.train(resume=run_dir, progress=False)
    (run_dir / "config.json").write_text("{not json")
    with pytest.raises(RunDirError, match="config.json is damaged"):
        deepfit.train(resume=run_dir, progress=False)


def test_resuming_on_another_device_is_said(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    _interrupted(run_dir, monkeypatch, 3)
    record = json.loads((run_dir / "config.json").read_text())
    record["train"]["device"] = "cuda:0"  # as if started on a GPU machine
    (run_dir / "config.json").write_text(json.dumps(record))
    run = deepfit.train(resume=run_dir, progress=False)
    assert any(w.startswith("resumed on cpu, started on cuda:0: the weights will not be bit-identical")
               for w in run.config["warnings"])


def _killed_at(run_dir: Path, monkeypatch, step: int, **settings) -> None:
    """As a SIGKILL just before optimizer step `step`: no interrupt checkpoint of its own."""
    original = Trainer._step

    def step_or_die(self, loss):
        if self.state.step + 1 == step:
            raise KeyboardInterrupt  # nothing checkpoints on the way out
        original(self, loss)

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_step", step_or_die)
        with pytest.raises(TrainingInterrupted, match="last complete checkpoint is kept"):
            deepfit.train("digits", out=run_dir, **{**SETTINGS, **settings})


@pytest.mark.parametrize("settings, newest", [
    ({"checkpoint_every_steps": 7}, "last-000000028"),        # 7, 14, 20 (epoch end), 21, 28
    ({"checkpoint_every_seconds": 1e-9}, "last-000000030"),   # every step: the clock is due
])
def test_checkpoints_within_an_epoch_bound_what_a_kill_loses(tmp_path, monkeypatch, uninterrupted,
                                                             settings, newest):
    run_dir = tmp_path / "run"
    _killed_at(run_dir, monkeypatch, 31, **settings)
    kept = complete_checkpoints(run_dir / "checkpoints", "last")
    assert kept[0].name == f"{newest}.safetensors"
    run = _resumed_equals(run_dir, uninterrupted)
    assert any(d.startswith("resumed at epoch 2, batch") for d in run.config["decisions"])


def test_without_checkpoints_within_epochs_a_kill_loses_the_epoch(tmp_path, monkeypatch):
    _killed_at(tmp_path / "run", monkeypatch, 31, checkpoint_every_seconds=0)
    assert complete_checkpoints(tmp_path / "run" / "checkpoints", "last")[0].name == "last-000000020.safetensors"


def test_sigterm_before_the_run_directory_exists_leaves_nothing(tmp_path):
    # While the command still loads its libraries and reads the data: the process ends and
    # nothing was written. The same command then runs into the same --out.
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    command = [sys.executable, "-m", "deepfit", "train", "digits", "--epochs", "1", "--no-report",
               "--out", str(out), "-q"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) != 0 and not out.exists()
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    assert json.loads((out / "config.json").read_text())["status"] == "finished"
