"""Under imbalance every tool scores what matters (issue 23, item 10): compare's leaderboard and
advise's bake-off rank by balanced accuracy when the training split's majority:minority ratio is
above the imbalance rule's 3:1, say so, and keep accuracy beside it; balanced data keep accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

import deepfit
from deepfit.tools.advise.rules import bootstrap_scores
from deepfit.tools.compare.baselines import ranking_metric

pytestmark = pytest.mark.usefixtures("one_thread", "keep_logging")
QUICK = {"epochs": 3, "patience": 2, "seed": 0}


def _table(n_major: int, n_minor: int, seed: int = 0) -> pd.DataFrame:
    """Two classes, the minority shifted on two of four features (separable but not trivially)."""
    rng = np.random.default_rng(seed)
    y = np.array(["benign"] * n_major + ["malignant"] * n_minor)
    X = rng.normal(size=(len(y), 4))
    X[y == "malignant", :2] += 1.5
    frame = pd.DataFrame(X, columns=["f1", "f2", "f3", "f4"])
    frame["label"] = y
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory):
    path = tmp_path_factory.mktemp("imb") / "imb.csv"
    _table(357, 20).to_csv(path, index=False)
    return path


def test_compare_ranks_by_balanced_accuracy_and_says_so(imbalanced, tmp_path):
    result = deepfit.compare(str(imbalanced), target="label", models="mlp", out=tmp_path / "c",
                             report=False, **QUICK)
    table = result.table
    assert result.metric == "balanced_accuracy" and (table["metric"] == "balanced_accuracy").all()
    assert "test_accuracy" in table.columns  # accuracy stays beside the score
    assert list(table["test_score"]) == sorted(table["test_score"], reverse=True)
    mlp = table.set_index("model").loc["mlp"]
    saved = pd.read_json(result.runs["mlp"] / "metrics.json", typ="series")
    assert mlp["test_score"] == pytest.approx(saved["balanced_accuracy"])
    assert mlp["test_accuracy"] == pytest.approx(saved["accuracy"])
    assert any("balanced accuracy" in n and "imbalanced" in n for n in result.notes)
    assert "balanced accuracy" in (result.path / "compare.html").read_text()


def test_advise_ranks_by_balanced_accuracy_and_says_so(imbalanced, tmp_path):
    advice = deepfit.advise(str(imbalanced), target="label", out=tmp_path / "a",
                            budget_seconds=60, **QUICK)
    assert advice.metric == "balanced_accuracy"
    assert advice.evidence["metric"] == "balanced_accuracy"
    assert any("balanced accuracy" in n for n in advice.notes)
    full = [r for r in advice.bakeoff if r["fraction"] == 1.0]
    assert {r["model"] for r in full} == {"mlp", "gradient_boosting", "linear"}
    for r in full:  # both scores, and the ranking score is not accuracy
        assert 0.0 <= r["test_score"] <= 1.0 and 0.0 <= r["test_accuracy"] <= 1.0
    assert advice.evidence["scores"] == {r["model"]: r["test_score"] for r in full}
    assert "test_accuracy" in (advice.path / "advise.html").read_text()


def test_the_ranking_metric_rule():
    metric, why = ranking_metric("classification", 357 / 20)
    assert metric == "balanced_accuracy" and "17.9:1" in why and "3:1" in why
    assert ranking_metric("classification", 2.9) == ("accuracy", None)  # at most 3:1: accuracy
    assert ranking_metric("classification", 1.0, "val_f1_macro")[0] == "f1_macro"
    assert ranking_metric("classification", 18.0, "val_loss")[0] == "balanced_accuracy"
    assert ranking_metric("regression", None, "val_mae") == ("r2", None)  # not a score: r2


def test_a_balanced_table_still_ranks_by_accuracy(tmp_path):
    path = tmp_path / "bal.csv"
    _table(150, 150).to_csv(path, index=False)
    result = deepfit.compare(str(path), target="label", models="mlp", out=tmp_path / "c",
                             report=False, **QUICK)
    assert result.metric == "accuracy" and "test_accuracy" not in result.table.columns
    assert result.notes == [n for n in result.notes if "balanced" not in n]


def test_bootstrap_balanced_accuracy_and_f1_match_scikit_learn():
    rng = np.random.default_rng(1)
    target, pred = rng.integers(0, 3, 80), rng.integers(0, 3, 80)
    for metric, fn in (("balanced_accuracy", balanced_accuracy_score),
                       ("f1_macro", lambda t, p: f1_score(t, p, average="macro"))):
        boot = bootstrap_scores("classification", target, [pred], n=20, seed=3, metric=metric)[0]
        idx = np.random.default_rng(3).integers(0, 80, (20, 80))
        expected = [fn(target[i], pred[i]) for i in idx]
        np.testing.assert_allclose(boot, expected, rtol=1e-12)
