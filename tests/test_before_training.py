"""Everything knowable before training is found before the first step (issue 23, item 7): a --test
file with a class the training data never had or without a feature column, a batch of one row
with a BatchNorm model; each a named error (exit 2) in well under a second, with nothing left
behind. A last training batch of one row is left out of each epoch (noted), not an error."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import torch

import deepfit
from cli_helpers import binary_frame, expect_cli_error, write_csv
from deepfit.checks.before_training import batch_findings, has_batchnorm
from deepfit.cli import main
from deepfit.data.batches import make_batches
from deepfit.errors import SettingsError
from deepfit.models import InputSpec, OutputSpec, create

pytestmark = pytest.mark.usefixtures("one_thread", "keep_logging")


@pytest.fixture
def files(tmp_path):
    frame = binary_frame(260, seed=1)
    train = write_csv(tmp_path, "train.csv", frame.iloc[:200])
    test = frame.iloc[200:].copy()
    test.iloc[:4, test.columns.get_loc("label")] = "maybe"
    return {"train": train, "new_class": write_csv(tmp_path, "test_new.csv", test),
            "no_b": write_csv(tmp_path, "test_no_b.csv", frame.iloc[200:].drop(columns="b")),
            "root": tmp_path}


def _fails_fast(argv: list[str], capsys, root, *expected) -> str:
    out = root / "run"
    start = time.perf_counter()
    line = expect_cli_error([*argv, "--out", str(out), "--epochs", "50"], capsys, root, out,
                            *expected)
    seconds = time.perf_counter() - start
    assert seconds < 1.5, f"took {seconds:.2f} s: the check came late"
    return line


def test_a_new_class_in_the_test_file_fails_before_training(files, capsys):
    line = _fails_fast(["train", str(files["train"]), "--target", "label", "--test",
                        str(files["new_class"])], capsys, files["root"], "'maybe'", "4 rows",
                       "never had")
    assert "test_new.csv" in line


def test_a_test_file_missing_a_feature_column_is_named(files, capsys):
    _fails_fast(["train", str(files["train"]), "--target", "label", "--test", str(files["no_b"])],
                capsys, files["root"], "lacks 1 feature column", "'b'", "test_no_b.csv")


def test_a_batch_of_one_with_batchnorm_fails_before_training(files, capsys):
    line = _fails_fast(["train", str(files["train"]), "--target", "label", "--model", "mlp",
                        "--batch-size", "1"], capsys, files["root"], "BatchNorm", "batch size 1",
                       "--batch-size 2 or more", "--set norm=none")
    assert line.startswith("deepfit: error: mlp has BatchNorm")


def test_compare_refuses_a_batch_of_one_before_any_model_trains(files, tmp_path):
    out = tmp_path / "cmp"
    with pytest.raises(SettingsError, match="resmlp has BatchNorm"):
        deepfit.compare(str(files["train"]), target="label", models="resmlp", batch_size=1,
                        out=out, epochs=2)
    assert not out.exists()


def test_batchnorm_is_found_by_looking_at_the_model():
    spec, out = InputSpec(n_features=4, n_dense=4), OutputSpec("classification", 2)
    assert has_batchnorm(create("mlp", spec, out))
    assert not has_batchnorm(create("mlp", spec, out, norm="none"))
    assert not has_batchnorm(create("resmlp", spec, out, norm="layer"))
    # without BatchNorm a batch of one is fine: no finding at all
    assert batch_findings(create("mlp", spec, out, norm="none"), "mlp", {"norm": "none"}, 1, 100) == []


def test_a_batch_of_one_without_batchnorm_trains(files, tmp_path):
    run = deepfit.train(str(files["train"]), target="label", model="mlp", norm="none",
                        batch_size=1, epochs=1, progress=False, report=False, out=tmp_path / "r")
    assert run.metrics["accuracy"] > 0.5


def test_a_last_batch_of_one_row_is_dropped_with_a_note(files, tmp_path):
    # 200 rows → 140 training rows; batches of 139 leave one row over
    run = deepfit.train(str(files["train"]), target="label", model="mlp", batch_size=139,
                        epochs=2, progress=False, report=False, out=tmp_path / "r")
    assert run.config["data"]["split_sizes"]["train"] == 140
    assert any("leave a last batch of one row" in d and "drop_last" in d
               for d in run.config["decisions"])
    assert len(run.history) == 2


def test_the_drop_is_decided_once_and_both_paths_agree():
    X, y = torch.randn(21, 3), torch.randint(0, 2, (21,))
    fast = make_batches(X, y, 10, loader="memory", shuffle=True, seed=4, device=torch.device("cpu"))
    stream = make_batches(X, y, 10, loader="stream", shuffle=True, seed=4, workers=0,
                          device=torch.device("cpu"))
    kept = make_batches(X, y, 10, loader="memory", shuffle=True, seed=4, device=torch.device("cpu"),
                        drop_single=False)
    assert len(fast) == len(stream) == 2 and len(kept) == 3
    for a, b in zip(fast.epoch(3), stream.epoch(3)):
        assert torch.equal(a[0], b[0]) and len(a[0]) == 10
    rows = torch.cat([xb for xb, _ in fast.epoch(3)])
    whole = torch.cat([xb for xb, _ in kept.epoch(3)])
    assert torch.equal(rows, whole[:20])  # the same order, the last row of it left out


def test_check_reports_what_train_would_refuse(files):
    findings = deepfit.check(str(files["train"]), target="label", test=str(files["new_class"]))
    assert any(f.check == "test_file" and f.severity == "error" and "'maybe'" in f.message
               for f in findings)
    findings = deepfit.check(str(files["train"]), target="label", batch_size=1)
    assert any(f.check == "batch_size" and f.severity == "error" for f in findings)
    findings = deepfit.check(str(files["train"]), target="label", batch_size=139)
    assert any(f.check == "batch_size" and f.severity == "info" for f in findings)


def test_the_check_command_takes_the_batch_size_train_would_use(files, capsys):
    assert main(["check", str(files["train"]), "--target", "label", "--batch-size", "1"]) == 1
    out = capsys.readouterr().out
    assert "batch_size" in out and "error" in out


def test_a_clean_test_file_still_trains(files, tmp_path):
    frame = pd.read_csv(files["new_class"])
    frame = frame[frame["label"] != "maybe"]
    clean = write_csv(tmp_path, "clean.csv", frame)
    run = deepfit.train(str(files["train"]), target="label", test=str(clean), test_size=0.0,
                        epochs=2, progress=False, report=False, out=tmp_path / "r")
    assert run.config["data"]["split_sizes"]["test"] == len(frame)
    assert np.isfinite(run.metrics["accuracy"])
