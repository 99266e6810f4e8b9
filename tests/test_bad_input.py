"""Bad input through the CLI: exit code 2, one `deepfit: error:` line on stderr that names the
problem, no traceback, and nothing written (no run directory, no output file, no stray files).

Commands run without `-q`: the decisions a run makes are held back until its inputs are known to
be good, so a run stopped by bad input prints its error line and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import binary_frame, expect_cli_error, write_csv
from deepfit.cli import main

FAST = ["--epochs", "2"]


# ------------------------------------------------------------------ data
def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    return binary_frame(n, seed)


# ------------------------------------------------------------ train cases
# Each case writes its inputs into tmp and returns (source, extra arguments, expected substrings).
Case = Callable[[Path], tuple[str, list[str], list[str]]]


def _missing_file(tmp: Path):
    return str(tmp / "nope.csv"), ["--target", "label"], ["no such file", "nope.csv"]


def _unknown_dataset(tmp: Path):
    return "digitz", [], ["unknown dataset", "'digitz'"]


def _target_not_a_column(tmp: Path):
    path = write_csv(tmp, "data.csv", _frame())
    return str(path), ["--target", "nope"], ["'nope'", "not a column", "'a', 'b', 'c', 'label'"]


def _csv_without_target(tmp: Path):
    path = write_csv(tmp, "data.csv", _frame())
    return str(path), [], ["--target", "'a', 'b', 'c', 'label'"]


def _target_with_missing_values(tmp: Path):
    frame = _frame()
    frame.loc[[3, 17], "label"] = np.nan
    path = write_csv(tmp, "data.csv", frame)
    return str(path), ["--target", "label"], ["'label'", "2 missing value"]


def _single_class(tmp: Path):
    frame = _frame().assign(label="yes")
    path = write_csv(tmp, "data.csv", frame)
    return str(path), ["--target", "label"], ["'label'", "single class"]


def _three_rows(tmp: Path):
    frame = _frame(3).assign(label=[1.5, 2.5, 3.25])  # regression: no stratification involved
    path = write_csv(tmp, "data.csv", frame)
    return str(path), ["--target", "label"], ["3 rows are fewer than the split needs"]


def _four_rows(tmp: Path):
    frame = _frame(4).assign(label=["no", "yes", "no", "yes"])
    path = write_csv(tmp, "data.csv", frame)
    # 2 train / 1 val / 1 test fits, but not with both classes in every split.
    return str(path), ["--target", "label"], ["fewer"]


def _four_rows_big_validation(tmp: Path):
    frame = _frame(4).assign(label=["no", "yes", "no", "yes"])
    path = write_csv(tmp, "data.csv", frame)
    return str(path), ["--target", "label", "--val-size", "0.5"], [
        "4 rows are fewer than the split needs"]


def _class_with_one_sample(tmp: Path):
    frame = _frame()
    frame.loc[0, "label"] = "rare"
    path = write_csv(tmp, "data.csv", frame)
    return str(path), ["--target", "label"], ["cannot stratify", "'rare' (1)"]


def _unknown_setting(tmp: Path):
    path = write_csv(tmp, "data.csv", _frame())
    return str(path), ["--target", "label", "--set", "foo=1"], ["unknown setting foo"]


def _unknown_flag(tmp: Path):
    path = write_csv(tmp, "data.csv", _frame())
    return str(path), ["--target", "label", "--bogus"], ["unrecognized arguments: --bogus"]


def _val_size_too_big(tmp: Path):
    path = write_csv(tmp, "data.csv", _frame())
    return str(path), ["--target", "label", "--val-size", "1.5"], ["val_size", "1.5"]


def _unknown_monitor(tmp: Path):
    path = write_csv(tmp, "data.csv", _frame())
    return str(path), ["--target", "label", "--monitor", "val_nonsense"], ["'val_nonsense'"]


def _epochs_not_a_number(tmp: Path):
    path = write_csv(tmp, "data.csv", _frame())
    return str(path), ["--target", "label", "--epochs", "abc"], ["--epochs", "'abc'"]


def _empty_csv(tmp: Path):
    path = tmp / "data.csv"
    path.write_bytes(b"")
    return str(path), ["--target", "label"], ["data.csv is empty"]


def _header_only_csv(tmp: Path):
    path = write_csv(tmp, "data.csv", _frame().iloc[:0])
    assert path.read_text().strip() == "a,b,c,label"
    return str(path), ["--target", "label"], ["data.csv holds no data rows"]


def _npz_without_y(tmp: Path):
    path = tmp / "data.npz"
    np.savez(path, X=np.random.default_rng(0).normal(size=(50, 3)))
    return str(path), [], ["no array named y"]


def _npz_lengths_differ(tmp: Path):
    rng = np.random.default_rng(0)
    path = tmp / "data.npz"
    np.savez(path, X=rng.normal(size=(50, 3)), y=rng.integers(0, 2, size=49))
    return str(path), [], ["X has 50 rows but y has 49"]


TRAIN_CASES: dict[str, Case] = {
    "missing-file": _missing_file,
    "unknown-dataset": _unknown_dataset,
    "target-not-a-column": _target_not_a_column,
    "csv-without-target": _csv_without_target,
    "target-with-missing-values": _target_with_missing_values,
    "single-class": _single_class,
    "three-rows": _three_rows,
    "four-rows": _four_rows,
    "four-rows-half-validation": _four_rows_big_validation,
    "class-with-one-sample": _class_with_one_sample,
    "unknown-setting": _unknown_setting,
    "unknown-flag": _unknown_flag,
    "val-size-1.5": _val_size_too_big,
    "unknown-monitor": _unknown_monitor,
    "epochs-not-a-number": _epochs_not_a_number,
    "empty-csv": _empty_csv,
    "header-only-csv": _header_only_csv,
    "npz-without-y": _npz_without_y,
    "npz-lengths-differ": _npz_lengths_differ,
}


@pytest.mark.parametrize("case", list(TRAIN_CASES.values()), ids=list(TRAIN_CASES))
def test_train_rejects_bad_input(case: Case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a stray default runs/ directory would show up here
    source, extra, expected = case(tmp_path)
    out = tmp_path / "run"
    line = expect_cli_error(["train", source, *extra, "--out", str(out), *FAST], capsys, tmp_path, out)
    for text in expected:
        assert text in line


def test_semicolon_csv_trains(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_csv(tmp_path, "data.csv", _frame(), sep=";")
    out = tmp_path / "run"
    assert main(["train", str(path), "--target", "label", "--out", str(out), *FAST, "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()


def test_quiet_before_the_subcommand_leaves_only_the_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source, extra, _ = _single_class(tmp_path)
    out = tmp_path / "run"
    expect_cli_error(["-q", "train", source, *extra, "--out", str(out), "--epochs", "2"],
                  capsys, tmp_path, out)


# ------------------------------------------------------ predict / evaluate
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A tiny run trained on _frame(), and the frame it was trained on."""
    root = tmp_path_factory.mktemp("trained")
    frame = _frame()
    path = write_csv(root, "train.csv", frame)
    run = root / "run"
    assert main(["train", str(path), "--target", "label", "--out", str(run), *FAST]) == 0
    return run, frame


def _expect_predict_error(argv: list[str], run: Path, capsys, tmp: Path, *absent: Path) -> str:
    before = {p: p.stat().st_mtime_ns for p in run.iterdir()}
    line = expect_cli_error(argv, capsys, tmp, *absent)
    assert {p: p.stat().st_mtime_ns for p in run.iterdir()} == before, "the run was touched"
    return line


def test_predict_missing_column(trained, tmp_path, capsys):
    run, frame = trained
    path = write_csv(tmp_path, "input.csv", frame.drop(columns=["b", "label"]))
    out = tmp_path / "out.csv"
    line = _expect_predict_error(["predict", str(run), str(path), "-o", str(out), "-q"],
                                 run, capsys, tmp_path, out)
    assert "missing column" in line and line.endswith(": 'b'")


def test_predict_text_in_numeric_column(trained, tmp_path, capsys):
    run, frame = trained
    frame = frame.drop(columns=["label"]).astype({"a": object})
    frame.loc[5, "a"] = "abc"
    path = write_csv(tmp_path, "input.csv", frame)
    out = tmp_path / "out.csv"
    line = _expect_predict_error(["predict", str(run), str(path), "-o", str(out), "-q"],
                                 run, capsys, tmp_path, out)
    assert "column 'a'" in line and "'abc'" in line


def test_predict_missing_input_file(trained, tmp_path, capsys):
    run, _ = trained
    out = tmp_path / "out.csv"
    line = _expect_predict_error(
        ["predict", str(run), str(tmp_path / "nope.csv"), "-o", str(out), "-q"],
        run, capsys, tmp_path, out)
    assert "no such file" in line and "nope.csv" in line


def test_predict_run_dir_that_does_not_exist(trained, tmp_path, capsys):
    _, frame = trained
    path = write_csv(tmp_path, "input.csv", frame)
    missing, out = tmp_path / "no-run", tmp_path / "out.csv"
    line = expect_cli_error(["predict", str(missing), str(path), "-o", str(out), "-q"],
                         capsys, tmp_path, out, missing)
    assert "no such run directory" in line and "no-run" in line


def test_evaluate_without_the_target_column(trained, tmp_path, capsys):
    run, frame = trained
    path = write_csv(tmp_path, "data.csv", frame.drop(columns=["label"]))
    line = _expect_predict_error(["evaluate", str(run), str(path), "-q"], run, capsys, tmp_path)
    assert "'label'" in line and "not a column" in line


def test_evaluate_run_dir_that_does_not_exist(trained, tmp_path, capsys):
    _, frame = trained
    path = write_csv(tmp_path, "data.csv", frame)
    missing = tmp_path / "no-run"
    line = expect_cli_error(["evaluate", str(missing), str(path), "-q"], capsys, tmp_path, missing)
    assert "no such run directory" in line


def test_predict_ignores_column_order_and_extra_columns(trained, tmp_path, capsys):
    run, frame = trained
    plain = write_csv(tmp_path, "plain.csv", frame.drop(columns=["label"]))
    shuffled = frame[["c", "label", "b", "a"]].assign(extra=np.arange(len(frame)) * 1.5)
    shuffled = write_csv(tmp_path, "shuffled.csv", shuffled)
    assert main(["predict", str(run), str(plain), "-q"]) == 0
    first = capsys.readouterr()
    assert main(["predict", str(run), str(shuffled), "-q"]) == 0
    second = capsys.readouterr()
    assert first.err == second.err == ""
    assert first.out.splitlines()[0] == "prediction,proba_no,proba_yes"
    assert len(first.out.splitlines()) == len(frame) + 1
    assert first.out == second.out
