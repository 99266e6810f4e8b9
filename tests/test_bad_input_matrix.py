"""The rest of the bad-input matrix (issue 8, item 4), through the CLI in-process.

tests/test_bad_input.py holds the first cases; here are the others. Each one either stops with
exit code 2, one `deepfit: error:` line naming the problem and nothing written, or, where the
input can be handled, trains (or predicts) with exit code 0 and says what it did: a warning on
stderr, and the decision or warning in the run's config.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import binary_frame, expect_cli_error, write_csv
from deepfit.cli import main
from deepfit.data.tables import read_table
from deepfit.errors import DataFormatError

FAST = ["--epochs", "2"]
RUN_FILES = ("model.safetensors", "model.json", "config.json", "metrics.json", "history.csv")


# ------------------------------------------------------------------ data
def _frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    return binary_frame(n, seed)


def _train_error(source: Path | str, extra: list[str], capsys, tmp: Path, *expected: str) -> str:
    out = tmp / "run"
    line = expect_cli_error(["train", str(source), *extra, "--out", str(out), *FAST],
                         capsys, tmp, *expected)
    assert not out.exists()
    return line


def _train_ok(source: Path, extra: list[str], capsys, tmp: Path) -> tuple[dict, str]:
    """Train; check the run directory is complete; return its config.json and the stderr."""
    out = tmp / "run"
    code = main(["train", str(source), *extra, "--out", str(out), *FAST])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err and "deepfit: error" not in err
    for name in RUN_FILES:
        assert (out / name).is_file(), f"{name} is missing"
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "finished"
    return config, err


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a stray default runs/ directory would show up in tmp_path


# ---------------------------------------------------- train: named errors
def test_space_delimited_file_is_named_a_delimiter_problem(tmp_path, capsys):
    path = write_csv(tmp_path, "data.csv", _frame(), sep=" ")
    _train_error(path, ["--target", "label"], capsys, tmp_path,
                 "'label' is not a column", "single column", "delimiter")


def test_a_column_of_numbers_with_a_few_words_is_named(tmp_path, capsys):
    frame = _frame().astype({"a": object})
    frame.loc[[4, 9], "a"] = "oops"
    path = write_csv(tmp_path, "data.csv", frame)
    _train_error(path, ["--target", "label"], capsys, tmp_path,
                 "column 'a' mixes numbers", "'oops'")


def test_words_only_in_held_out_rows_are_still_named(tmp_path, capsys):
    """Whether a column is numbers is settled over all rows, not over the training rows alone."""
    frame = _frame(40).astype({"a": object})
    frame.loc[39, "a"] = "oops"  # 1 of 40: a column of numbers, wherever the row lands
    path = write_csv(tmp_path, "data.csv", frame)
    _train_error(path, ["--target", "label"], capsys, tmp_path, "column 'a' mixes numbers")


def test_every_feature_column_empty(tmp_path, capsys):
    frame = _frame().assign(a=np.nan, b=np.nan, c=np.nan)
    path = write_csv(tmp_path, "data.csv", frame)
    _train_error(path, ["--target", "label"], capsys, tmp_path, "every feature column is empty")


def test_infinite_regression_target(tmp_path, capsys):
    frame = _frame().assign(label=np.linspace(0, 1, 120))
    frame.loc[7, "label"] = np.inf
    path = write_csv(tmp_path, "data.csv", frame)
    _train_error(path, ["--target", "label"], capsys, tmp_path, "'label'", "infinite")


def test_npz_without_x(tmp_path, capsys):
    path = tmp_path / "data.npz"
    np.savez(path, y=np.arange(50) % 2)
    _train_error(path, [], capsys, tmp_path, "no array named X", "y")


def test_npz_with_object_arrays_is_refused_without_unpickling(tmp_path, capsys):
    path = tmp_path / "data.npz"
    X = np.array([[1, "a"], [2, "b"]] * 20, dtype=object)
    np.savez(path, X=X, y=np.arange(40) % 2)  # np.savez pickles object arrays
    _train_error(path, [], capsys, tmp_path, "data.npz", "pickle", "refused")


def test_npz_with_a_scalar_x(tmp_path, capsys):
    path = tmp_path / "data.npz"
    np.savez(path, X=np.float64(3.0), y=np.arange(40) % 2)
    _train_error(path, [], capsys, tmp_path, "X has shape ()")


def test_npz_that_is_one_npy_array(tmp_path, capsys):
    path = tmp_path / "data.npz"
    with path.open("wb") as f:
        np.save(f, np.zeros((10, 2)))
    _train_error(path, [], capsys, tmp_path, "single .npy array")


def test_npz_that_is_not_an_archive(tmp_path, capsys):
    path = tmp_path / "data.npz"
    path.write_bytes(b"this is not a zip file at all\n")
    _train_error(path, [], capsys, tmp_path, "data.npz")


def test_parquet_that_is_not_parquet(tmp_path, capsys):
    path = tmp_path / "data.parquet"
    path.write_text("a,b,label\n1,2,yes\n")
    _train_error(path, ["--target", "label"], capsys, tmp_path,
                 "data.parquet is not a readable Parquet file")


def test_a_directory_as_the_source(tmp_path, capsys):
    """A folder is read as an image folder (a subfolder per class); an empty one is named."""
    folder = tmp_path / "data"
    folder.mkdir()
    _train_error(folder, ["--target", "label"], capsys, tmp_path, str(folder))


def test_a_directory_given_to_read_as_a_table(tmp_path):
    folder = tmp_path / "data.csv"
    folder.mkdir()
    with pytest.raises(DataFormatError, match="data.csv is a directory, not a table"):
        read_table(folder)


def test_a_file_of_nul_bytes(tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_bytes(b"\x00" * 64)
    _train_error(path, ["--target", "label"], capsys, tmp_path, "data.csv", "NUL")


def test_a_byte_order_mark_alone_is_an_empty_file(tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_bytes(b"\xef\xbb\xbf\r\n")
    _train_error(path, ["--target", "label"], capsys, tmp_path, "data.csv is empty")


def test_ragged_rows(tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_text("a,b,label\n1,2,yes\n3,4,no,5,6\n")
    _train_error(path, ["--target", "label"], capsys, tmp_path,
                 "data.csv is not a readable CSV file")


def test_too_few_rows_for_the_classes_in_the_training_split(tmp_path, capsys):
    """With a large validation and test share, the training rows cannot hold every class."""
    frame = _frame(30).assign(label=np.repeat(["p", "q", "r", "s", "t"], 6))
    path = write_csv(tmp_path, "data.csv", frame)
    _train_error(path, ["--target", "label", "--val-size", "0.44", "--test-size", "0.44"],
                 capsys, tmp_path, "training split")


# ------------------------------------------------------ train: handled
def test_tab_delimited_csv_trains_and_says_so(tmp_path, capsys):
    path = write_csv(tmp_path, "data.csv", _frame(), sep="\t")
    config, _ = _train_ok(path, ["--target", "label"], capsys, tmp_path)
    assert any("delimiter '\\t'" in d for d in config["decisions"])
    assert config["data"]["columns"] == ["a", "b", "c"]


def test_semicolons_with_a_comma_in_a_header_name(tmp_path, capsys):
    """A comma in the first line does not make the file comma-separated."""
    frame = _frame().rename(columns={"a": "price, eur"})
    path = write_csv(tmp_path, "data.csv", frame, sep=";")
    config, _ = _train_ok(path, ["--target", "label"], capsys, tmp_path)
    assert any("delimiter ';'" in d for d in config["decisions"])
    assert config["data"]["columns"] == ["price, eur", "b", "c"]


def test_an_all_missing_column_is_dropped_with_a_warning(tmp_path, capsys):
    frame = _frame().assign(empty=np.nan)
    path = write_csv(tmp_path, "data.csv", frame)
    config, err = _train_ok(path, ["--target", "label"], capsys, tmp_path)
    assert "dropped 1 column with no values at all: 'empty'" in err
    assert any("empty" in w for w in config["warnings"])
    assert "empty" not in config["data"]["columns"]
    assert _model_columns(tmp_path) == ["a", "b", "c"]


def test_infinite_feature_values_are_treated_as_missing(tmp_path, capsys):
    frame = _frame()
    frame.loc[[2, 50], "a"] = np.inf
    frame.loc[[9], "b"] = -np.inf
    path = write_csv(tmp_path, "data.csv", frame)
    config, err = _train_ok(path, ["--target", "label"], capsys, tmp_path)
    assert "infinite value treated as missing" in err
    assert any("'a'" in w and "infinite" in w for w in config["warnings"])


def test_latin1_csv_is_decoded_with_a_warning(tmp_path, capsys):
    frame = _frame().assign(c=lambda f: f["c"].map({"x": "café", "y": "thé", "z": "crème"}))
    path = tmp_path / "data.csv"
    path.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    config, err = _train_ok(path, ["--target", "label"], capsys, tmp_path)
    assert "data.csv is not UTF-8" in err
    assert any("not UTF-8" in w for w in config["warnings"])
    model = json.loads((tmp_path / "run" / "model.json").read_text())
    cats = next(c for c in model["preprocessor"]["categorical"] if c["name"] == "c")
    assert cats["categories"] == ["café", "crème", "thé"]


def test_utf16_csv_with_a_byte_order_mark_trains(tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_bytes(_frame().to_csv(index=False).encode("utf-16"))
    config, _ = _train_ok(path, ["--target", "label"], capsys, tmp_path)
    assert config["data"]["columns"] == ["a", "b", "c"]


def test_boolean_target_trains_as_two_classes(tmp_path, capsys):
    frame = _frame().assign(label=lambda f: f["label"] == "yes")
    path = write_csv(tmp_path, "data.csv", frame)
    config, _ = _train_ok(path, ["--target", "label"], capsys, tmp_path)
    assert config["data"]["task"] == "classification"
    model = json.loads((tmp_path / "run" / "model.json").read_text())
    assert model["target"]["classes"] == [False, True]


def test_numbers_with_thousands_separators_are_numbers(tmp_path, capsys):
    frame = _frame().assign(a=lambda f: [f"{v:,.2f}" for v in f["a"] * 100_000])
    path = write_csv(tmp_path, "data.csv", frame)
    assert '"' in path.read_text()  # the commas in the numbers are quoted
    config, _ = _train_ok(path, ["--target", "label"], capsys, tmp_path)
    assert any("'a'" in d and "thousands separators" in d for d in config["decisions"])
    assert "a" in [c["name"] for c in _numeric_columns(tmp_path)]


def test_numbers_stored_as_text_are_numbers(tmp_path, capsys):
    frame = _frame().astype({"a": str})
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    config, _ = _train_ok(path, ["--target", "label"], capsys, tmp_path)
    assert any("'a' holds numbers written as text" in d for d in config["decisions"])
    assert "a" in [c["name"] for c in _numeric_columns(tmp_path)]


def _model_json(tmp: Path) -> dict:
    return json.loads((tmp / "run" / "model.json").read_text())


def _numeric_columns(tmp: Path) -> list[dict]:
    return _model_json(tmp)["preprocessor"]["numeric"]


def _model_columns(tmp: Path) -> list[str]:
    pre = _model_json(tmp)["preprocessor"]
    return [c["name"] for c in pre["numeric"] + pre["categorical"]]


# ------------------------------------------------------ predict / evaluate
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A tiny run trained on _frame(), and the frame it was trained on."""
    root = tmp_path_factory.mktemp("trained")
    frame = _frame()
    run = root / "run"
    assert main(["train", str(write_csv(root, "train.csv", frame)), "--target", "label",
                 "--out", str(run), *FAST, "-q"]) == 0
    return run, frame


@pytest.fixture(scope="module")
def trained_on_arrays(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    root = tmp_path_factory.mktemp("arrays")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    path = root / "train.npz"
    np.savez(path, X=X, y=y)
    run = root / "run"
    assert main(["train", str(path), "--out", str(run), *FAST, "-q"]) == 0
    return run, X, y


def _untouched(run: Path):
    return {p: p.stat().st_mtime_ns for p in run.iterdir()}


def test_predict_on_an_empty_csv(trained, tmp_path, capsys):
    run, _ = trained
    path = tmp_path / "input.csv"
    path.write_bytes(b"")
    before = _untouched(run)
    expect_cli_error(["predict", str(run), str(path), "-o", str(tmp_path / "out.csv"), "-q"],
                  capsys, tmp_path, "input.csv is empty")
    assert _untouched(run) == before


def test_predict_on_a_header_only_csv(trained, tmp_path, capsys):
    run, frame = trained
    path = write_csv(tmp_path, "input.csv", frame.iloc[:0])
    expect_cli_error(["predict", str(run), str(path), "-o", str(tmp_path / "out.csv"), "-q"],
                  capsys, tmp_path, "input.csv holds no data rows")


def test_predict_on_an_npz_for_a_table_model_names_the_columns(trained, tmp_path, capsys):
    run, frame = trained
    path = tmp_path / "input.npz"
    np.savez(path, X=frame[["a", "b"]].to_numpy())
    expect_cli_error(["predict", str(run), str(path), "-o", str(tmp_path / "out.csv"), "-q"],
                  capsys, tmp_path, "missing column", "'a', 'b', 'c'")


def test_predict_on_an_npz_for_an_array_model(trained_on_arrays, tmp_path, capsys):
    run, X, _ = trained_on_arrays
    path = tmp_path / "input.npz"
    np.savez(path, X=X[:7])  # no y: predict does not need one
    out = tmp_path / "out.csv"
    assert main(["predict", str(run), str(path), "-o", str(out), "-q"]) == 0
    assert capsys.readouterr().err == ""
    predictions = pd.read_csv(out)
    assert len(predictions) == 7 and list(predictions.columns) == ["prediction", "proba_0", "proba_1"]


def test_predict_on_an_npz_with_object_arrays(trained_on_arrays, tmp_path, capsys):
    run, _, _ = trained_on_arrays
    path = tmp_path / "input.npz"
    np.savez(path, X=np.array([[1, "a", None]] * 3, dtype=object))
    expect_cli_error(["predict", str(run), str(path), "-o", str(tmp_path / "out.csv"), "-q"],
                  capsys, tmp_path, "pickle", "refused")


def test_predict_with_reordered_columns_only(trained, tmp_path, capsys):
    run, frame = trained
    plain = write_csv(tmp_path, "plain.csv", frame.drop(columns=["label"]))
    reordered = write_csv(tmp_path, "reordered.csv", frame[["c", "b", "a"]])
    assert main(["predict", str(run), str(plain), "-q"]) == 0
    first = capsys.readouterr().out
    assert main(["predict", str(run), str(reordered), "-q"]) == 0
    assert capsys.readouterr().out == first


def test_evaluate_with_reordered_and_extra_columns(trained, tmp_path, capsys):
    run, frame = trained
    plain = write_csv(tmp_path, "plain.csv", frame)
    shuffled = write_csv(tmp_path, "shuffled.csv",
                    frame[["label", "c", "a", "b"]].assign(extra="unused", more=1.5))
    assert main(["evaluate", str(run), str(plain), "-q"]) == 0
    first = capsys.readouterr()
    assert main(["evaluate", str(run), str(shuffled), "-q"]) == 0
    second = capsys.readouterr()
    assert first.err == second.err == ""
    rows = [[line for line in out.splitlines() if "│" in line] for out in (first.out, second.out)]
    assert rows[0] and rows[0] == rows[1]  # the same metrics, to the last digit shown


def test_evaluate_with_classes_the_model_never_saw(trained, tmp_path, capsys):
    run, frame = trained
    frame = frame.copy()
    frame.loc[[3, 8], "label"] = "maybe"
    path = write_csv(tmp_path, "data.csv", frame)
    before = _untouched(run)
    expect_cli_error(["evaluate", str(run), str(path), "-q"], capsys, tmp_path,
                  "classes the model never saw", "maybe")
    assert _untouched(run) == before


def test_evaluate_on_an_empty_csv(trained, tmp_path, capsys):
    run, _ = trained
    path = tmp_path / "data.csv"
    path.write_text("\n\n")
    expect_cli_error(["evaluate", str(run), str(path), "-q"], capsys, tmp_path, "data.csv is empty")


def test_evaluate_with_an_all_missing_column_imputes_it(trained, tmp_path, capsys):
    """Held-out rows go through the fitted preprocessing as they are: an empty column is
    imputed, not dropped (and then reported missing)."""
    run, frame = trained
    path = write_csv(tmp_path, "data.csv", frame.assign(b=np.nan))
    assert main(["evaluate", str(run), str(path), "-q"]) == 0
    assert "accuracy" in capsys.readouterr().out
