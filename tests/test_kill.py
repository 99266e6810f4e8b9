"""Real processes killed for real: SIGKILL at random moments and SIGTERM, then resume, compared
byte for byte with an uninterrupted run of the same settings."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ARGS = ["digits", "--epochs", "30", "--patience", "100", "--seed", "11", "--threads", "2"]


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "deepfit.cli", "train", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_checkpoint(run_dir: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not list((run_dir / "checkpoints").glob("last-*.done")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


def _finish(*args: str) -> subprocess.CompletedProcess:
    proc = _start(*args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> bytes:
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    _finish(*ARGS, "--out", str(run_dir))
    return (run_dir / "model.safetensors").read_bytes()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_a_random_moment_then_resume_is_bit_identical(tmp_path, reference, seed):
    run_dir = tmp_path / "run"
    proc = _start(*ARGS, "--out", str(run_dir))
    _wait_for_checkpoint(run_dir, proc)
    time.sleep(random.Random(seed).uniform(0.0, 1.0))  # mid-epoch, mid-write, anywhere
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    _finish("--resume", str(run_dir), "--threads", "2")
    assert (run_dir / "model.safetensors").read_bytes() == reference


def test_sigterm_checkpoints_says_how_to_resume_and_resumes_exactly(tmp_path, reference):
    run_dir = tmp_path / "run"
    proc = _start(*ARGS, "--out", str(run_dir))
    _wait_for_checkpoint(run_dir, proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"Resume with: deepfit train --resume {run_dir}" in err
    assert "Traceback" not in err
    _finish("--resume", str(run_dir), "--threads", "2")
    assert (run_dir / "model.safetensors").read_bytes() == reference


def test_a_code_running_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    script = (
        "import os, torch\n"
        "class Evil:\n"
        f"    def __reduce__(self): return (os.system, ('touch {marker}',))\n"
        f"torch.save({{'w': torch.zeros(2), 'x': Evil()}}, '{evil}')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    proc = subprocess.run(
        [sys.executable, "-m", "deepfit.cli", "train", "iris", "--epochs", "1",
         "--init-weights", str(evil), "--out", str(tmp_path / "run")],
        capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"deepfit: error: {evil} would run code when unpickled (it calls posix.system); "
        "refused, nothing was run. Convert it to safetensors where it came from"]
    assert not marker.exists() and not (tmp_path / "run").exists()
