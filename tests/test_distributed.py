"""deepfit train under torchrun (PyTorch DDP, gloo on the CPU, 2 processes): evaluation over
exactly the split's rows, the same weights in every process, one writer, failure and resume.
The multi-process tests start real torchrun jobs (`deepfit train --nproc 2` or
`python -m torch.distributed.run`), so they are slow and get generous timeouts (shared machine)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score

import deepfit
from cli_helpers import binary_frame
from deepfit.cli import main
from deepfit.cli.launch import torchrun_command
from deepfit.data.batches import InMemoryBatches, StreamingBatches, TensorSource, shard_bounds
from deepfit.errors import SettingsError, WorldSizeMismatch
from deepfit.lifecycle.prepare import prepare
from deepfit.training.distributed import check_world_size, pad_rows, unpad

SRC = str(Path(deepfit.__file__).resolve().parents[1])
EPOCHS = 40
# 300 rows: 210 train, 45 validation and 45 test rows, odd: the last process's block is padded
ARGS = ["--target", "label", "--seed", "3", "--epochs", str(EPOCHS), "--patience", "100",
        "--batch-size", "16", "--threads", "1", "--no-report", "--checkpoint-every-steps", "5"]
TIMEOUT = 420


# ----------------------------------------------------------------- no processes
@pytest.mark.parametrize("n, world", [(45, 2), (46, 2), (7, 3), (5, 4), (1, 1), (100, 7)])
def test_blocks_padded_gathered_and_unpadded_give_every_row_once_in_order(n, world):
    rows = torch.arange(n * 3, dtype=torch.float32).reshape(n, 3)
    per = -(-n // world)
    chunks = []
    for rank in range(world):
        lo, hi = shard_bounds(n, world, rank)
        assert hi - lo in (n // world, per)
        chunks.append(pad_rows(rows[lo:hi], per) + 0)  # what all_gather hands back
        assert chunks[-1].shape == (per, 3)
    assert torch.equal(unpad(chunks, n), rows)


@pytest.mark.parametrize("streamed", [False, True])
def test_each_process_gets_a_disjoint_share_of_every_global_batch(streamed):
    X, y = torch.randn(37, 2), torch.arange(37)

    def batches(rank=None):
        b = (StreamingBatches(TensorSource(X, y), 8, seed=5, workers=0, drop_single=False)
             if streamed else InMemoryBatches(X, y, 8, seed=5, drop_single=False))
        if rank is not None:
            b.shard(rank, 2)
        return b

    one = [yb for _, yb in batches().epoch(2)]
    parts = [[yb for _, yb in batches(r).epoch(2)] for r in (0, 1)]
    assert len(parts[0]) == len(parts[1]) == len(one)
    for whole, a, b in zip(one, *parts):
        assert set(a.tolist()).isdisjoint(b.tolist())
        assert sorted(a.tolist() + b.tolist()) == sorted(whole.tolist())
    evaluated = [torch.cat([yb for _, yb in batches(r).eval_batches()]) for r in (0, 1)]
    assert torch.equal(torch.cat(evaluated), y)  # contiguous blocks, in order


def test_a_last_global_batch_too_small_to_share_is_left_out_and_tiny_batches_refused():
    b = InMemoryBatches(torch.randn(33, 2), torch.arange(33), 8, drop_single=True)
    b.shard(0, 2)  # 33 = 4·8 + 1: one row cannot give two processes two rows each
    assert b.n_used == 32
    with pytest.raises(SettingsError, match="cannot be split over 2 processes"):
        InMemoryBatches(torch.randn(9, 2), torch.arange(9), 3, drop_single=True).shard(0, 2)


def test_resuming_with_another_process_count_is_a_named_error():
    class Two:
        world_size = 2
    check_world_size({"world_size": 2}, Two())
    check_world_size({}, None)  # a one-process checkpoint, one process
    with pytest.raises(WorldSizeMismatch, match="checkpointed by 2 processes"):
        check_world_size({"world_size": 2}, None)
    with pytest.raises(WorldSizeMismatch, match="checkpointed by 1 process and"):
        check_world_size({}, Two())


def test_sync_bn_converts_batchnorm_on_cuda_and_says_it_is_not_used_on_the_cpu():
    from deepfit.training.distributed import Distributed

    def model():
        return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    on_cuda = Distributed(0, 2, 0, torch.device("cuda", 0), "nccl")
    converted, said = on_cuda.convert_sync_bn(model())
    assert isinstance(converted[1], torch.nn.SyncBatchNorm) and "global batch" in said
    kept, said = Distributed(0, 2, 0, torch.device("cpu"), "gloo").convert_sync_bn(model())
    assert type(kept[1]) is torch.nn.BatchNorm1d and said.startswith("--sync-bn not used")


def test_nproc_execs_torchrun_with_the_same_command_less_nproc():
    cmd = torchrun_command(3, ["train", "data.csv", "--nproc", "3", "--epochs", "2", "--nproc=3"])
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "3",
                       "-m", "deepfit", "train", "data.csv", "--epochs", "2"]


# ----------------------------------------------------------------- real processes
def _env(probe: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONUNBUFFERED": "1", "DEEPFIT_DIST_TIMEOUT": "60"}
    if probe is not None:
        probe.mkdir(exist_ok=True)
        env["DEEPFIT_DDP_PROBE"] = str(probe)
    return env


def _torchrun(cwd: Path, *args: str, probe: Path | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "deepfit", "train", *args]
    return subprocess.Popen(cmd, cwd=cwd, env=_env(probe), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(proc: subprocess.Popen) -> tuple[str, str]:
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err[-3000:]
    return out, err


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "binary.csv"
    binary_frame(300, seed=4).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, data):
    """An uninterrupted 2-process run through the shortcut, deepfit train --nproc 2."""
    root = tmp_path_factory.mktemp("ddp")
    probe = root / "probe"
    cmd = [sys.executable, "-m", "deepfit", "train", str(data), *ARGS, "--nproc", "2", "--out", "run"]
    proc = subprocess.run(cmd, cwd=root, env=_env(probe), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, proc


@pytest.mark.slow
def test_gathered_validation_and_test_metrics_equal_one_process_on_the_saved_weights(ddp_run, data):
    root, _ = ddp_run
    run_dir = root / "run"
    prepared = prepare(str(data), target="label", seed=3)
    X, y = prepared.tensors["val"]
    assert len(y) % 2 == 1, "the validation split should need padding over 2 processes"
    model = deepfit.load(run_dir).model.eval()
    with torch.no_grad():
        out = model(X)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["processes"] == 2
    best = config["train"]["best_epoch"]
    row = _history(run_dir)[best - 1]
    assert float(row["val_accuracy"]) == accuracy_score(y.numpy(), out.argmax(1).numpy())
    assert abs(float(row["val_loss"]) - F.cross_entropy(out, y).item()) < 1e-6
    X_test, y_test = prepared.test_frame
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n"] == len(y_test) == 45
    predicted = deepfit.load(run_dir).predict(X_test)
    assert metrics["accuracy"] == float((predicted == y_test.to_numpy()).mean())


def _history(run_dir: Path) -> list[dict[str, str]]:
    import csv
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_both_processes_end_with_the_same_weights_one_run_directory_one_progress(ddp_run):
    root, proc = ddp_run
    ranks = [json.loads((root / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert ranks[0]["pid"] != ranks[1]["pid"]
    assert sorted(p.name for p in root.iterdir()) == ["probe", "run"]
    for epoch in range(1, EPOCHS + 1):
        assert proc.stderr.count(f"epoch {epoch}/{EPOCHS} ") == 1, proc.stderr[-2000:]
    assert proc.stdout.count("run saved to run") == 1
    assert proc.stdout.count("test metrics") == 1
    assert "torchrun: 2 processes (gloo on cpu)" in proc.stderr


def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the job ended before {what}: {proc.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, f"no {what}"
        time.sleep(0.01)


@pytest.mark.slow
def test_a_killed_process_ends_the_job_with_a_named_error_within_the_timeout(tmp_path, data):
    probe = tmp_path / "probe"
    proc = _torchrun(tmp_path, str(data), *ARGS[:-2], "--epochs", "400", "--out", "run", probe=probe)
    _wait_for(lambda: (probe / "rank1.json").exists(), proc, "rank 1 started")
    pid = json.loads((probe / "rank1.json").read_text())["pid"]
    time.sleep(1.0)
    started = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert time.monotonic() - started < 120
    assert proc.returncode != 0
    assert "ChildFailedError" in err and "Signal 9 (SIGKILL)" in err, err[-3000:]
    assert "rank      : 1" in err or "local_rank: 1" in err, err[-3000:]


@pytest.mark.slow
def test_sigkill_then_resume_under_torchrun_is_bit_identical_and_another_count_refused(
        tmp_path, data, ddp_run, capsys):
    reference = (ddp_run[0] / "run" / "model.safetensors").read_bytes()
    probe = tmp_path / "probe"
    proc = _torchrun(tmp_path, str(data), *ARGS, "--out", "run", probe=probe)
    run_dir = tmp_path / "run"
    _wait_for(lambda: any((run_dir / "checkpoints").glob("last-*.done")), proc, "a checkpoint")
    time.sleep(0.5)  # a few epochs in: mid-epoch, mid-write, anywhere
    # torchrun and both processes at once (its workers have sessions of their own)
    for pid in [proc.pid, *(json.loads((probe / f"rank{r}.json").read_text())["pid"] for r in (0, 1))]:
        os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert not (run_dir / "model.safetensors").exists(), "the run ended before it could be killed"
    code = main(["train", "--resume", str(run_dir), "--threads", "1"])  # one process: refused
    err = capsys.readouterr().err
    assert code == 2 and "checkpointed by 2 processes" in err, err
    _finish(_torchrun(tmp_path, "--resume", "run", "--threads", "1"))
    assert (run_dir / "model.safetensors").read_bytes() == reference


@pytest.mark.slow
def test_processes_that_prepared_different_data_stop_with_a_named_error(tmp_path):
    script = tmp_path / "check.py"
    script.write_text(textwrap.dedent("""
        import os, sys
        from deepfit.errors import DistributedMismatch
        from deepfit.training.distributed import init_from_env
        dist = init_from_env("cpu")
        dist.check_same({"data": "same", "split": "a"})
        try:
            dist.check_same({"data": "same", "split": os.environ["RANK"]})
        except DistributedMismatch as exc:
            open(f"rank{os.environ['RANK']}.txt", "w").write(f"MISMATCH {exc}")
        dist.close()
    """))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", str(script)], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):  # every process stops, with the same message
        said = (tmp_path / f"rank{rank}.txt").read_text()
        assert said.startswith("MISMATCH process 1 of 2 has another split than process 0"), said


def test_benchmark_nproc_takes_process_counts(capsys):
    assert main(["benchmark", "--nproc", "one,two"]) == 2
    assert "--nproc takes process counts like 1,2" in capsys.readouterr().err


@pytest.mark.slow
def test_early_stopping_is_decided_alike_in_every_process(tmp_path, data):
    probe = tmp_path / "probe"
    args = [str(data), *ARGS[:ARGS.index("--epochs")], "--epochs", "200", "--patience", "3",
            "--batch-size", "16", "--threads", "1", "--no-report", "--lr", "0.01", "--out", "run"]
    _finish(_torchrun(tmp_path, *args, probe=probe))
    train = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert train["stop_reason"].startswith("early stopping: val_loss did not improve for 3 epochs")
    assert train["epochs_run"] == train["best_epoch"] + 3 < 200
    assert len(_history(tmp_path / "run")) == train["epochs_run"]
    ranks = [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["step"] == ranks[1]["step"] > 0  # both left at the same step
    assert ranks[0]["weights"] == ranks[1]["weights"]  # and restored the same best epoch


@pytest.mark.slow
def test_an_error_in_one_process_ends_the_job_with_that_process_s_message(tmp_path):
    script = tmp_path / "one_fails.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        from deepfit.cli import main
        source = "iris" if os.environ["RANK"] == "0" else {str(tmp_path / "missing.csv")!r}
        sys.exit(main(["train", source, "--epochs", "3", "--threads", "1", "--no-report",
                       "--out", "run"]))
    """))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", str(script)], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert time.monotonic() - started < 60  # the agent stops rank 0, long before the timeout
    assert proc.returncode != 0
    assert "deepfit: error: process 1 of 2: no such file:" in proc.stderr, proc.stderr[-3000:]
    assert "exitcode  : 2" in proc.stderr  # rank 1's DeepfitError, named as the failure
    assert not (tmp_path / "run").exists()  # nothing half-written


@pytest.mark.slow
def test_the_process_group_timeout_ends_a_collective_whose_partner_never_comes(tmp_path):
    script = tmp_path / "late.py"
    script.write_text(textwrap.dedent("""
        import time
        from deepfit.training.distributed import init_from_env
        dist = init_from_env("cpu")
        if dist.rank == 1:
            time.sleep(60)
        started = time.monotonic()
        try:
            dist.any(True)
        except RuntimeError as exc:
            open("waited.txt", "w").write(f"{time.monotonic() - started} {exc}")
            raise
    """))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", str(script)], cwd=tmp_path,
                          env=_env() | {"DEEPFIT_DIST_TIMEOUT": "3"}, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert proc.returncode != 0
    seconds, message = (tmp_path / "waited.txt").read_text().split(" ", 1)
    assert 2.5 < float(seconds) < 30, seconds  # DEEPFIT_DIST_TIMEOUT, not torch's 30 minutes
    assert "Timed out" in message


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="NCCL needs CUDA: this machine has no GPU, so the NCCL path is untested here")
@pytest.mark.slow
def test_nccl_on_cuda_gathers_validation_exactly(tmp_path, data):
    n = min(2, torch.cuda.device_count())
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           str(n), "-m", "deepfit", "train", str(data), *ARGS, "--device", "cuda", "--out", "run"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "run"
    train = json.loads((run_dir / "config.json").read_text())["train"]
    assert (train["processes"], train["backend"]) == (n, "nccl")
    X, y = prepare(str(data), target="label", seed=3).tensors["val"]
    model = deepfit.load(run_dir).model.cuda().eval()
    with torch.no_grad():
        out = model(X.cuda()).float().cpu()
    row = _history(run_dir)[train["best_epoch"] - 1]
    assert float(row["val_accuracy"]) == accuracy_score(y.numpy(), out.argmax(1).numpy())
    assert abs(float(row["val_loss"]) - F.cross_entropy(out, y).item()) < 1e-5
