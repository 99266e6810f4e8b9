"""`deepfit compare` and `deepfit advise` say up front how long they will take (issue 22): from
the budget when there is one ("at most"), else compare's epochs and then its pace per model.
The lines go to stderr with the other notes, so stdout keeps the JSON alone."""

from __future__ import annotations

import json
import re

import pytest

import deepfit
from deepfit.cli import main

pytestmark = pytest.mark.usefixtures("one_thread", "keep_logging")


def test_compare_says_its_bound_before_training(tmp_path, caplog) -> None:
    with caplog.at_level("INFO", logger="deepfit"):
        deepfit.compare("iris", models="mlp", epochs=2, budget_seconds=30, report=False,
                        out=tmp_path / "c")
    said = caplog.messages
    line = ("compare: 1 model + gradient boosting and a linear model (logistic regression) × "
            "at most 30 s of training each: at most ~60 s of training in all, plus evaluation")
    assert line in said
    assert said.index(line) < said.index("trained for all 2 epochs")  # before the model trains
    assert not any("at that pace" in m for m in said)  # bounded: the bound is the estimate


def test_compare_without_a_budget_says_its_epochs_then_its_pace(tmp_path, caplog) -> None:
    with caplog.at_level("INFO", logger="deepfit"):
        deepfit.compare("iris", models="mlp,resmlp", epochs=2, patience=4, report=False,
                        out=tmp_path / "c")
    said = "\n".join(caplog.messages)
    plan = said.index("compare: 2 models + gradient boosting and a linear model (logistic "
                      "regression), each up to 2 epochs (early stopping, patience 4); no time budget")
    pace = re.search(r"compare: mlp took \d+ s; ~\d+ s more for the other 1 at that pace", said)
    assert pace and plan < pace.start()
    assert "resmlp took" not in said  # nothing left after the last model


def test_advise_says_its_bound_before_the_bakeoff(tmp_path, capsys) -> None:
    code = main(["advise", "iris", "--epochs", "2", "--budget-seconds", "40",
                 "--out", str(tmp_path / "a"), "--json"])
    assert code == 0
    captured = capsys.readouterr()
    advice = json.loads(captured.out)
    rows = max(r["train_rows"] for r in advice["bakeoff"])  # all the training rows: 100 %
    line = ("advise: mlp, gradient boosting and a linear model (logistic regression) on 25, 50 "
            f"and 100 % of {rows:,} training rows, within --budget-seconds 40: at most ~40 s of training in all")
    assert line in captured.err
