"""How a file wrote its numbers is a property of the training data, saved with the model: a
predict, evaluate or --test file reads each number column as the training file did, whatever
its other columns hold (the newcomer's 1000x case: 2.629 is 2629 in a decimal-comma file)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import deepfit
from deepfit.cli import main
from deepfit.core.notes import Notes
from deepfit.data.tables import read_table

pytestmark = pytest.mark.usefixtures("one_thread")
RUN = {"epochs": 3, "progress": False, "report": False, "checkpoint": False, "threads": 1,
       "force": True}  # one feature that predicts y: the audit would call it a leak


def _european(values: np.ndarray, decimals: int) -> list[str]:
    text = [f"{v:,.{decimals}f}" for v in values]
    return [t.replace(",", "_").replace(".", ",").replace("_", ".") for t in text]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """price written 2.629 (thousands dots, whole numbers), y with decimal commas."""
    rng = np.random.default_rng(0)
    price = rng.integers(1000, 9000, 200).astype(float)
    y = price / 1000 + rng.normal(0, 0.01, 200)
    tmp = tmp_path_factory.mktemp("w")
    pd.DataFrame({"price": _european(price, 0), "y": _european(y, 2)}).to_csv(
        tmp / "train.csv", sep=";", index=False)
    run = deepfit.train(str(tmp / "train.csv"), target="y", out=tmp / "run", **RUN)
    return run, tmp, price


def test_the_thousands_dots_of_training_are_kept_at_predict(trained):
    run, tmp, _ = trained
    assert run.predictor.preprocessor.written == {"price": "decimal_comma", "y": "decimal_comma"}
    (tmp / "p.csv").write_text("price;x\n2.629;a\n4.500;b\n")  # no comma column in this file
    alone = read_table(tmp / "p.csv", Notes(live=False))
    assert alone["price"].tolist() == [2.629, 4.5]  # read on its own: dots are decimal points
    read = read_table(tmp / "p.csv", Notes(live=False), written=run.predictor.preprocessor.written)
    assert read["price"].tolist() == [2629.0, 4500.0]
    frame = pd.DataFrame({"price": [2629.0, 4500.0]})
    np.testing.assert_array_equal(deepfit.predict(run.path, tmp / "p.csv")["prediction"],
                                  run.predict(frame))


def test_a_dot_decimal_training_file_is_not_read_as_thousands_later(tmp_path):
    """The reverse: a ';' file of dot decimals trains on 3.328; a later file that holds a
    decimal-comma column elsewhere still reads 3.328, not 3328."""
    rng = np.random.default_rng(1)
    ratio = rng.uniform(1, 9, 120).round(3)
    frame = pd.DataFrame({"ratio": [f"{v:.3f}" for v in ratio], "y": (ratio > 5).astype(int)})
    frame.to_csv(tmp_path / "t.csv", sep=";", index=False)
    run = deepfit.train(str(tmp_path / "t.csv"), target="y", out=tmp_path / "run", **RUN)
    assert run.predictor.preprocessor.written["ratio"] == "decimal_point"
    (tmp_path / "e.csv").write_text("ratio;note;y\n3.328;1,5;0\n7.125;2,5;1\n")
    read = read_table(tmp_path / "e.csv", Notes(live=False), written=run.predictor.preprocessor.written)
    assert read["ratio"].tolist() == [3.328, 7.125] and read["note"].tolist() == [1.5, 2.5]
    metrics = deepfit.evaluate(run.path, tmp_path / "e.csv")
    assert metrics["n"] == 2


def test_a_dot_only_column_read_as_thousands_is_a_warning_not_a_decimal_comma_note(tmp_path):
    (tmp_path / "s.csv").write_text("ratio;z\n3.328;6,66\n1.250;2,5\n")
    notes = Notes(live=False)
    frame = read_table(tmp_path / "s.csv", notes)
    assert frame["ratio"].tolist() == [3328.0, 1250.0] and frame["z"].tolist() == [6.66, 2.5]
    assert any("'z' written with a decimal comma" in d for d in notes.decisions)
    assert not any("'ratio'" in d for d in notes.decisions)
    assert any("'ratio'" in w and "thousands" in w for w in notes.warnings)


def test_the_test_file_reads_like_the_training_file(trained, tmp_path):
    _, tmp, _ = trained
    (tmp_path / "test.csv").write_text("price;y\n2.629;2,63\n4.500;4,5\n")
    tested = deepfit.train(str(tmp / "train.csv"), target="y", test=str(tmp_path / "test.csv"),
                           test_size=0.0, out=tmp_path / "run", **RUN)
    predicted = tested.predict(pd.DataFrame({"price": [2629.0, 4500.0]}))  # 2629, not 2.629
    mse = float(np.mean((predicted - np.array([2.63, 4.5])) ** 2))
    assert tested.metrics["n"] == 2 and tested.metrics["mse"] == pytest.approx(mse, rel=1e-5)


def test_a_decimal_comma_column_mixing_in_dot_decimals_at_predict_is_named(trained, capsys):
    run, tmp, _ = trained
    (tmp / "bad.csv").write_text("price;x\n2.629;a\n2629.5;b\n")
    assert main(["predict", str(run.path), str(tmp / "bad.csv"), "-o", str(tmp / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "'price' was written with a decimal comma" in err and "2629.5" in err
    assert not (tmp / "o.csv").exists()
    (tmp / "dots.csv").write_text("price;x\n2629.5;a\n4500.25;b\n")  # plainly dot decimals
    read = read_table(tmp / "dots.csv", Notes(live=False), written=run.predictor.preprocessor.written)
    assert read["price"].tolist() == [2629.5, 4500.25]
