"""Sources and settings that are not sane are refused up front (issue #24), with a named error,
one line and exit 2, within a time bound: FIFOs and devices where a file is expected, a line or
a header past the limits, Parquet columns of lists, maps or structs, arrays of object or
structured dtype or with a zero-size dimension, a model too large for the memory, `--hidden
64,,32` and negative sizes, an `--out` that cannot be created; messages quoting names escape
control characters, so an error stays one line and cannot repaint the terminal."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import deepfit
from deepfit.cli import main
from deepfit.data import tables
from deepfit.errors import DataFormatError, SettingsError

SECONDS = 30
QUIET = {"epochs": 1, "progress": False, "report": False}


@pytest.fixture(autouse=True)
def time_bound(answer_within):
    with answer_within(SECONDS):
        yield


def _one_line_exit_2(capsys, *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("deepfit: error: "), err
    return err[0]


def test_a_fifo_or_a_device_is_refused_without_reading_it(tmp_path, capsys):
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)  # a read would block for ever
    for command in (["train", str(fifo), "--target", "y"], ["check", str(fifo), "--target", "y"]):
        assert "is a FIFO (named pipe), not a file" in _one_line_exit_2(capsys, *command)
    assert "is a device, not a file" in _one_line_exit_2(capsys, "train", "/dev/zero", "--target", "y")
    with pytest.raises(DataFormatError, match="is a device"):
        tables.read_table("/dev/urandom")


def test_a_line_or_a_header_past_the_limits_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "MAX_LINE_CHARS", 1000)
    monkeypatch.setattr(tables, "MAX_COLUMNS", 50)
    long_line = tmp_path / "long.csv"
    long_line.write_text("a,y\n" + "1" * 2000 + ",0\n1,1\n")
    with pytest.raises(DataFormatError, match=r"line 2 is longer than 1,000 characters"):
        deepfit.train(str(long_line), target="y", **QUIET)
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(["c"] * 200 + ["y"]) + "\n" + ",".join(["1"] * 201) + "\n")
    with pytest.raises(DataFormatError, match=r"201 columns, more than the limit of 50"):
        deepfit.train(str(wide), target="y", **QUIET)


def test_200000_duplicate_column_names_answer_at_once(tmp_path):
    # The fuzzer's hang: one CSV line of 200,000 copies of one name.
    path = tmp_path / "dups.csv"
    path.write_text(",".join(["a"] * 200_000) + "\n")
    with pytest.raises(DataFormatError, match=r"200,000 columns, more than the limit of 100,000"):
        deepfit.train(str(path), target="a", **QUIET)


def test_parquet_lists_maps_and_structs_are_named(tmp_path):
    table = pa.table({
        "x": [1.0, 2.0, 3.0],
        "tags": pa.array([[1, 2], [3], []], type=pa.list_(pa.int64())),
        "point": pa.array([{"u": 1, "v": 2}] * 3, type=pa.struct([("u", pa.int64()), ("v", pa.int64())])),
        "y": [0, 1, 0],
    })
    path = tmp_path / "nested.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataFormatError, match=r"nested values, .*'tags' \(list<.*\), 'point' \(struct<"):
        deepfit.train(str(path), target="y", **QUIET)


@pytest.mark.parametrize("X, y, says", [
    (np.zeros((40, 3), dtype=object), np.arange(40) % 2, r"X must be numbers, got dtype object"),
    (np.random.rand(40, 3), np.zeros(40, dtype=[("a", "i4"), ("b", "f4")]), r"y has the structured dtype"),
    (np.zeros(40, dtype=[("a", "f4")]), np.arange(40) % 2, r"X has the structured dtype"),
    (np.random.rand(40, 3, 0, 4), np.arange(40) % 2, r"X has shape \(40, 3, 0, 4\): a dimension of size 0"),
    (np.random.rand(40, 0), np.arange(40) % 2, r"X has shape \(40, 0\): a dimension of size 0"),
])
def test_arrays_of_odd_dtypes_or_shapes_are_named(X, y, says, tmp_path):
    with pytest.raises(DataFormatError, match=says):
        deepfit.train(X, y=y, out=tmp_path / "run", **QUIET)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    if X.dtype != object:  # an object array cannot be saved without pickle
        with pytest.raises(DataFormatError, match=says.replace("X ", r".*X ").replace("y ", r".*y ")):
            deepfit.train(str(tmp_path / "d.npz"), out=tmp_path / "run2", **QUIET)
    assert not (tmp_path / "run").exists() and not (tmp_path / "run2").exists()


def test_one_pixel_images_train_or_are_named(tmp_path):
    X, y = np.random.default_rng(0).random((40, 1, 1, 1)).astype("float32"), np.arange(40) % 2
    try:
        run = deepfit.train(X, y=y, out=tmp_path / "run", **QUIET)
    except SettingsError as exc:  # the model's pooling needs more pixels: said, with the shape
        assert "(1, 1, 1)" in str(exc) and "--image-size" in str(exc)
    else:
        assert any("no random crop" in d for d in run.config["decisions"])


def test_a_model_too_large_for_the_memory_is_named_before_allocation(tmp_path, capsys):
    line = _one_line_exit_2(capsys, "train", "iris", "--hidden", "100000000", "--out", str(tmp_path / "r"))
    assert "GiB" in line and "free" in line and not (tmp_path / "r").exists()


@pytest.mark.parametrize("hidden, says", [("64,,32", "an empty entry"), ("64,-3", r"positive layer widths, not \(64, -3\)")])
def test_hidden_with_an_empty_or_negative_entry_is_refused(tmp_path, hidden, says):
    with pytest.raises(SettingsError, match=says):
        deepfit.train("iris", hidden=hidden, out=tmp_path / "r", **QUIET)


def test_an_out_that_cannot_be_created_is_named(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _one_line_exit_2(capsys, "train", "iris", "--epochs", "1", "--out", str(blocker / "run"))
    assert "cannot create the run directory" in line


def test_names_in_messages_are_escaped_to_one_line(tmp_path, capsys):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0] * 10, "b\x1b[2J\nevil": [0, 1, 2] * 10})
    path = tmp_path / "evil.csv"
    frame.to_csv(path, index=False)
    line = _one_line_exit_2(capsys, "train", str(path), "--target", "nope\x1b[31m")
    assert "\x1b" not in line and "\\x1b[31m" in line


def test_log_lines_and_printed_findings_are_escaped(tmp_path, capsys):
    frame = pd.DataFrame({"a\x1b[2J": [1.0, 1.0, 1.0] * 20, "b": [0.5, 1.5, 2.5] * 20,
                          "y": [0, 1] * 30})  # a constant column with an escape in its name
    path = tmp_path / "evil.csv"
    frame.to_csv(path, index=False)
    main(["check", str(path), "--target", "y"])
    out, err = capsys.readouterr()
    assert "\x1b" not in err and "\x1b" not in out
    assert "a\\x1b[2J" in out + err  # the name is there, shown escaped
