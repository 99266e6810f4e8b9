"""`deepfit benchmark --nproc 1,2`: training throughput of `deepfit train` per process count
(one process as it is; more under torchrun, training/distributed.py), measured on real runs.

samples/s = training rows of all epochs / the seconds of the training steps (history.csv's
train_seconds, rank 0's clock: the processes step in lockstep), the median over `repeats`
runs, with the spread (min, max). Start-up, validation and saving are not counted."""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from deepfit.errors import SettingsError


def process_throughput(source: str = "digits", counts: tuple[int, ...] = (1, 2), *, epochs: int = 3,
                       batch_size: int = 64, repeats: int = 3, threads: int = 1,
                       extra: tuple[str, ...] = (), timeout: float = 600) -> list[dict[str, Any]]:
    """One row per process count: {"processes", "samples_per_s" (median), "min", "max", "runs"}.
    Raises SettingsError when a run fails (its last error line)."""
    rows = []
    for n in counts:
        rates = [_one_run(source, n, epochs, batch_size, threads, extra, timeout) for _ in range(repeats)]
        rows.append({"processes": n, "samples_per_s": statistics.median(rates), "min": min(rates),
                     "max": max(rates), "runs": rates, "batch_size": batch_size, "epochs": epochs})
    return rows


def _one_run(source: str, n: int, epochs: int, batch_size: int, threads: int,
             extra: tuple[str, ...], timeout: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        args = ["train", source, "--epochs", str(epochs), "--patience", str(epochs + 1),
                "--batch-size", str(batch_size), "--threads", str(threads), "--no-report",
                "--no-checkpoint", "--quiet", "--out", str(run_dir), *extra]
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                     "--nproc-per-node", str(n), "-m", "deepfit"] if n > 1 else [sys.executable, "-m", "deepfit"])
        done = subprocess.run([*launcher, *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SettingsError(f"the run on {n} processes failed: {last}")
        with open(run_dir / "history.csv") as f:
            seconds = sum(float(row["train_seconds"]) for row in csv.DictReader(f))
        config = json.loads((run_dir / "config.json").read_text())
        return config["data"]["split_sizes"]["train"] * config["train"]["epochs_run"] / seconds
