"""Tables as people write them (issue 23, items 1, 3, 4 and their `deepfit check` findings).

Decimal commas with thousands dots in a `;` file read as the same numbers as the dot file; names
written with ", " between fields are stripped and errors quote names; a float target of a few
whole numbers is a class column with integer labels; a category is the same category however
pandas typed the column; `deepfit check` shows each reading decision.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

import deepfit
from deepfit.checks.findings import from_notes
from deepfit.core.notes import Notes
from deepfit.data.tables import read_table
from deepfit.errors import DataFormatError, TargetError
from deepfit.modalities import load_source
from deepfit.modalities.tabular.preprocess import Preprocessor, category_text

pytestmark = pytest.mark.usefixtures("one_thread")
TRAIN = {"epochs": 2, "batch_size": 16, "progress": False, "checkpoint": False, "report": False,
         "seed": 0}


def _table(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    price = np.round(rng.uniform(-50, 5000, n), 2)  # many above 1000: thousands dots
    rate = np.round(rng.normal(0, 1, n), 3)
    city = rng.choice(["Paris", "Lyon", "Nice"], n)
    label = np.where(price / 1000 + rate > 2.5, "yes", "no")
    return pd.DataFrame({"price": price, "rate": rate, "city": city, "label": label})


def _european(frame: pd.DataFrame) -> str:
    """The frame as a European spreadsheet writes it: ';' between fields, decimal commas and
    thousands dots."""
    def cell(v):
        if isinstance(v, float):
            return f"{v:,.3f}".rstrip("0").rstrip(".").translate(str.maketrans(",.", ".,"))
        return str(v)
    lines = [";".join(frame.columns)]
    lines += [";".join(cell(v) for v in row) for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def test_decimal_comma_file_gives_the_dot_files_features_and_weights(tmp_path):
    frame = _table()
    dots, commas = tmp_path / "dots.csv", tmp_path / "commas.csv"
    frame.to_csv(dots, index=False)
    commas.write_text(_european(frame))
    assert re.search(r"\n\d\.\d{3},\d+;", commas.read_text())  # thousands dots were written
    notes = Notes(live=False)
    read = read_table(commas, notes)
    pd.testing.assert_frame_equal(read, frame, check_dtype=False)
    assert any("'price', 'rate' written with a decimal comma" in d for d in notes.decisions)
    runs = [deepfit.train(path, target="label", out=tmp_path / path.stem, **TRAIN)
            for path in (dots, commas)]
    features = [r.predictor.features(read_table(dots)) for r in runs]
    assert torch.equal(features[0], features[1])
    fitted = [r.predictor.preprocessor.to_dict() for r in runs]
    written = [f.pop("written") for f in fitted]  # how each file wrote its numbers, kept for predict
    assert fitted[0] == fitted[1]
    assert written == [{}, {"price": "decimal_comma", "rate": "decimal_comma"}]
    weights = [r.predictor.model.state_dict() for r in runs]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_column_mixing_decimal_commas_with_dot_numbers_is_named(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("a;b\n" + "".join(f"{i},5;x\n" for i in range(20)) + "0.5;y\n")
    with pytest.raises(DataFormatError, match=r"column 'a' mixes numbers .*'0.5' in 1 row"):
        read_table(path)


def test_a_semicolon_file_without_decimal_commas_keeps_its_dot_numbers(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("a;b;c\n1.234;1.5;x\n2.000;2;y\n")
    read = read_table(path)
    assert read["a"].tolist() == [1.234, 2.0] and read["b"].tolist() == [1.5, 2.0]


def test_header_and_text_spaces_are_stripped_and_errors_quote_names(tmp_path):
    path = tmp_path / "spaced.csv"
    rows = "".join(f"{i}, {i % 3}, Paris ,{i % 2}\n" for i in range(30))
    path.write_text("a, b , city,y\n" + rows)
    notes = Notes(live=False)
    read = read_table(path, notes)
    assert list(read.columns) == ["a", "b", "city", "y"]
    assert set(read["city"]) == {"Paris"} and read["b"].dtype.kind == "i"
    assert any("column names ' b ', ' city'" in d for d in notes.decisions)
    with pytest.raises(TargetError, match=r"columns: 'a', 'b', 'city', 'y'"):
        load_source(path, target="label")
    (tmp_path / "clash.csv").write_text("a, a,y\n1,2,3\n")
    with pytest.raises(DataFormatError, match=r"columns 'a', ' a' have the same name"):
        read_table(tmp_path / "clash.csv")
    spaced = pd.DataFrame({" b": [1, 2, 3, 4], "y": [0, 1, 0, 1]})  # a DataFrame as given
    with pytest.raises(TargetError, match=r"columns: ' b', 'y'"):
        load_source(spaced, target="b")


def _float_labels(tmp_path, n: int = 80):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (n, 2))
    y = (x[:, 0] + x[:, 1] + rng.normal(0, 0.5, n) > 0).astype(float)
    frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "y": y})
    path = tmp_path / "float_labels.csv"
    frame.to_csv(path, index=False)
    assert "1.0" in path.read_text()
    return path, frame


def test_float_labels_train_a_classifier_that_predicts_class_labels(tmp_path):
    path, frame = _float_labels(tmp_path)
    run = deepfit.train(path, target="y", out=tmp_path / "run", **TRAIN)
    assert run.config["data"]["task"] == "classification"
    assert any("2 whole numbers written as floats" in d for d in run.notes.decisions)
    assert run.predictor.classes == [0, 1]
    predicted = deepfit.predict(run.path, path)["prediction"]
    assert set(predicted) <= {0, 1} and all(isinstance(v, (int, np.integer)) for v in predicted)
    agree = (predicted.to_numpy() == frame["y"].to_numpy()).mean()
    assert agree > 0.5  # the labels 0.0/1.0 and the classes 0/1 compare equal
    assert deepfit.evaluate(run.path, path)["accuracy"] == pytest.approx(agree)
    regression = deepfit.train(path, target="y", task="regression", out=tmp_path / "reg", **TRAIN)
    assert regression.config["data"]["task"] == "regression"


def test_too_many_whole_numbers_are_regression_and_say_why():
    y = pd.Series(np.arange(30, dtype=float) % 25)
    X = pd.DataFrame({"x": np.arange(30.0)})
    notes = Notes(live=False)
    data = load_source(X, y=y, notes=notes)
    assert data.task == "regression"
    assert any("25 distinct whole numbers, more than the 20" in d for d in notes.decisions)


def test_codes_read_as_floats_predict_like_the_clean_file(tmp_path, keep_logging):
    rng = np.random.default_rng(2)
    n = 90
    code = rng.choice(["101", "102", "103", "A7"], n)  # text in training: a categorical column
    x = rng.normal(0, 1, n)
    y = np.where((code == "102") | (x > 1), "b", "a")
    pd.DataFrame({"code": code, "x": x, "y": y}).to_csv(tmp_path / "train.csv", index=False)
    run = deepfit.train(tmp_path / "train.csv", target="y", out=tmp_path / "run", **TRAIN)
    new = pd.DataFrame({"code": [101, 102, 103, 101, 102, 103], "x": np.linspace(-1, 2, 6)})
    new.to_csv(tmp_path / "clean.csv", index=False)
    blank = new.astype({"code": object})
    blank.loc[3, "code"] = None  # one blank cell: pandas reads the codes as 101.0, 102.0 …
    blank.to_csv(tmp_path / "blank.csv", index=False)
    assert read_table(tmp_path / "blank.csv")["code"].dtype.kind == "f"
    clean = deepfit.predict(run.path, tmp_path / "clean.csv")
    with_blank = deepfit.predict(run.path, tmp_path / "blank.csv")
    others = [0, 1, 2, 4, 5]
    pd.testing.assert_frame_equal(clean.iloc[others], with_blank.iloc[others])
    pre, notes = run.predictor.preprocessor, Notes(live=False)
    codes = [pre._codes(pre.categorical[0], read_table(tmp_path / name)["code"], notes)
             for name in ("clean.csv", "blank.csv")]
    known = {c: i + 1 for i, c in enumerate(pre.categorical[0].categories)}
    expected = [known[str(c)] for c in new["code"]]
    assert codes[0].tolist() == expected
    assert codes[1][others].tolist() == [expected[i] for i in others]
    assert len(notes.warnings) == 1 and "1 value never seen" in notes.warnings[0]  # the blank


def test_a_category_has_one_text_whatever_its_dtype():
    assert category_text(101) == category_text(101.0) == category_text("101") == "101"
    assert category_text("101.0") == category_text(" 101 ") == "101"
    assert category_text(1.5) == "1.5" and category_text("007") == "007"
    # a model saved before: its float category was written '101.0'
    old = Preprocessor.from_dict({"numeric": [], "categorical": [
        {"name": "c", "categories": ["101.0", "102.0", "A7"], "encoding": "onehot"}]})
    block = old.transform(pd.DataFrame({"c": [101, 102.0, "102", "A7"]}), Notes(live=False))
    assert block.argmax(axis=1).tolist() == [1, 2, 2, 3]


def test_mostly_unknown_categories_warn_naming_the_column():
    pre = Preprocessor().fit(pd.DataFrame({"colour": ["red", "green"] * 10}), Notes(live=False))
    notes = Notes(live=False)
    pre.transform(pd.DataFrame({"colour": ["pink", "blue", "red", "pink"]}), notes)
    assert len(notes.warnings) == 1
    warning = notes.warnings[0]
    assert "'colour'" in warning and "3 of 4 rows" in warning
    assert "'blue', 'pink'" in warning and "'green', 'red'" in warning
    few = Notes(live=False)
    pre.transform(pd.DataFrame({"colour": ["pink", "red", "red"]}), few)
    assert "1 value never seen" in few.warnings[0]


def test_check_reports_how_the_file_was_read(tmp_path):
    frame = _table(60).assign(label=lambda f: np.where(f["label"] == "yes", "1,0", "0,0"))
    path = tmp_path / "commas.csv"
    path.write_text(_european(frame).replace("price;rate", "price; rate", 1))
    findings = deepfit.check(path, target="label", epochs=1)
    reading = [f.message for f in findings if f.check == "reading"]
    assert all(f.severity == "info" for f in findings if f.check == "reading")
    assert any("'price', 'rate', 'label' written with a decimal comma" in m for m in reading)
    assert any("stripped the spaces around column name ' rate'" in m for m in reading)
    assert any("whole numbers written as floats" in m for m in reading)
    assert from_notes(["d"], ["w"])[1].severity == "warning"
