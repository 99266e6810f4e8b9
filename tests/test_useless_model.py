"""A useless model never looks like a success (issue 23, item 9): a run no better than the
trivial predictor gets an error-level checklist item, a warning and a hint at the likely cause."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import deepfit
from deepfit.checks.useless import likely_causes
from deepfit.evaluation.checklist import chance_tolerance, trivial_item, trivial_reference
from deepfit.modalities import get_modality
from deepfit.modalities.tabular.preprocess import Preprocessor

pytestmark = pytest.mark.usefixtures("one_thread", "keep_logging")
ITEM = "better than the trivial predictor"


def _item(run) -> dict:
    return next(i for i in run.metrics["checklist"] if i["criterion"] == ITEM)


def _free_text_csv(tmp_path) -> str:
    rng = np.random.default_rng(0)
    n = 500
    words = np.array(["red", "car", "slow", "blue", "tree", "house", "fast", "dog", "sun", "rain"])
    note = [" ".join(rng.choice(words, 4)) + f" #{i}" for i in range(n)]  # every row its own text
    frame = pd.DataFrame({"note": note, "x": rng.normal(size=n),
                          "label": rng.choice(["no", "yes"], n, p=[0.6, 0.4])})
    path = tmp_path / "text.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_a_free_text_column_read_as_text_and_an_unrelated_target_is_an_error(tmp_path):
    path = _free_text_csv(tmp_path)
    run = deepfit.train(path, target="label", epochs=4, progress=False, out=tmp_path / "r")
    assert run.config["data"]["modality"] == "text"
    assert any("column 'note' read as text" in d for d in run.config["decisions"])
    item = _item(run)
    assert not item["passed"] and item["severity"] == "error"
    assert "words of the texts" in item["hint"]


def test_a_free_text_column_read_as_categories_and_an_unrelated_target_is_an_error_with_the_column_named(tmp_path):
    """--no-text: the old reading, a category per row, which the checks name."""
    path = _free_text_csv(tmp_path)
    run = deepfit.train(path, target="label", epochs=4, progress=False, out=tmp_path / "r", text=False)
    item = _item(run)
    assert not item["passed"] and item["severity"] == "error"
    assert "'note'" in item["hint"] and "categories" in item["hint"]
    assert any("no better than the trivial predictor" in w and "'note'" in w
               for w in run.config["warnings"])
    html = (run.path / "report.html").read_text()
    assert "error: better than the trivial predictor" in html and "likely cause" in html
    # the data audit says it before training too, in train's notes and in deepfit check
    assert any(w.startswith("id_like:") and "'note'" in w for w in run.config["warnings"])
    found = [f for f in deepfit.check(path, target="label", text=False) if f.check == "id_like"]
    assert len(found) == 1 and found[0].severity == "warning" and found[0].subject == "note"
    assert "500 distinct values in 500 rows" in found[0].message


def test_a_category_column_with_repeats_is_not_id_like():
    from deepfit.modalities.tabular.audit import id_like_columns

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(30)], 200),
                      "id": [f"u{i}" for i in range(200)], "n": np.arange(200),
                      "when": pd.date_range("2024-01-01", periods=200).astype(str)})
    found = id_like_columns(X)
    assert len(found) == 1 and found[0].subject == "id"


def test_a_good_run_has_no_such_error(tmp_path):
    run = deepfit.train("breast_cancer", epochs=3, progress=False, report=False, out=tmp_path / "r")
    item = _item(run)
    assert item["passed"] and "severity" not in item
    assert not any("trivial predictor" in w for w in run.config["warnings"])


def test_the_rule_on_numbers():
    ref = trivial_reference("classification", [80, 20], [0] * 40 + [1] * 10, ["a", "b"])
    assert ref["majority"] == "a" and ref["majority_share"] == 0.8
    # always answering the majority class: balanced accuracy 0.5 exactly
    majority = {"accuracy": 0.8, "balanced_accuracy": 0.5}
    assert trivial_item(majority, "classification", ref)["severity"] == "error"
    # lower accuracy than the majority share, but the minority class found: a fine model
    assert trivial_item({"accuracy": 0.76, "balanced_accuracy": 0.85}, "classification", ref)["passed"]
    # the luck a chance predictor has on 40 + 10 test rows: two standard errors
    assert chance_tolerance([40, 10]) == pytest.approx(2 * np.sqrt(0.25 * (1 / 40 + 1 / 10) / 4))
    assert trivial_item({"r2": -0.01}, "regression", {})["severity"] == "error"
    assert trivial_item({"r2": 0.4}, "regression", {})["passed"]


def test_the_hints_name_an_all_unseen_column_or_else_the_target():
    train = pd.DataFrame({"shop": ["a", "b", "c"] * 20, "x": np.arange(60.0)})
    pre = Preprocessor().fit(train)
    test = pd.DataFrame({"shop": ["z", "y"] * 10, "x": np.arange(20.0)})
    causes = likely_causes(pre, 60, test)
    assert len(causes) == 1 and "'shop'" in causes[0] and "100%" in causes[0]
    causes = likely_causes(pre, 60, train.iloc[:20], modality=get_modality("tabular"))
    assert "may not depend on these features" in causes[0]


def test_when_the_training_failed_the_hint_names_the_training_not_the_data():
    """`deepfit train digits --lr 5`: the guards found the LR; the hint had said "no column was
    read oddly: the target may not depend on these features"."""
    from deepfit.checks.useless import failed_training

    stuck = ("loss not decreasing: after 12 epochs the best validation loss (2.332, epoch 7) is "
             "no better than 2.319 …")
    history = [{"train_loss": 42.3, "val_loss": 5.9, "lr": 5.0}, {"train_loss": 2.3, "val_loss": 2.3, "lr": 5.0}]
    pre = Preprocessor().fit(pd.DataFrame({"x": np.arange(60.0)}))
    for warnings, history_, says in [
        ([stuck], history, "far too high (lr 5)"),  # the LR named by the history alone
        (["non-finite values: the training loss became NaN/Inf at step 20 …"], history, "NaN/Inf"),
        (["dead ReLU: units that never activate …"], [], "died"),
        (["dead units: no gradient reaches features.8 …"], [], "dead units warning"),
        (["vanishing gradients: …", "dead ReLU: …"], [], "gradients vanished"),  # depth first
        ([stuck], [{"train_loss": 2.3, "val_loss": 2.3, "lr": 1e-7}] * 3, "too low"),
    ]:
        causes = likely_causes(pre, 60, pd.DataFrame({"x": np.arange(5.0)}), warnings=warnings,
                               history=history_)
        assert len(causes) == 1 and causes[0].startswith("the training failed"), warnings
        assert says in causes[0] and "may not depend" not in causes[0]
    # a loss stuck at the trivial level at the default LR: the labels, not the training
    labels = [{"train_loss": 2.3, "val_loss": 2.31, "lr": 1e-3}] * 3
    assert failed_training([stuck], labels) is None
    assert failed_training(["constant: 3 columns hold a single value"], history) is None


def test_the_hint_for_images_and_sequences_speaks_of_them_not_of_columns():
    for modality, noun in (("image", "images"), ("sequence", "sequences")):
        causes = likely_causes(None, 1257, None, modality=get_modality(modality))
        assert "column" not in causes[0] and f"what the {noun} show" in causes[0]
        assert f"1,257 training {noun}" in causes[0]
    tables = get_modality("tabular")
    assert "no column was read oddly" in likely_causes(None, 1, None, modality=tables)[0]
    assert "1 training row)" in likely_causes(None, 1, None, modality=tables)[0]


def test_a_diverged_run_is_useless_because_of_the_training(tmp_path):
    run = deepfit.train("digits", lr=5.0, epochs=12, progress=False, report=False,
                        checkpoint=False, out=tmp_path / "r")
    item = _item(run)
    assert not item["passed"] and item["hint"].startswith("the training failed")
    assert "learning rate" in item["hint"] and "may not depend" not in item["hint"]
