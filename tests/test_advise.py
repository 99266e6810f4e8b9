"""deepfit advise: the verdict follows the guide's matrix unless the measured evidence clearly
disagrees, and every verdict's evidence is in the JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import deepfit
from deepfit.cli import main
from deepfit.tools.advise.rules import Evidence, Gap, bootstrap_scores, decide, matrix_row
from generated import motif_sequences

QUICK = {"epochs": 8, "patience": 3, "budget_seconds": 600}  # epochs bind, not the clock: no flakes under load


pytestmark = pytest.mark.usefixtures("one_thread")



def _evidence_in_json(path, advice) -> dict:
    saved = json.loads((path / "advise.json").read_text())
    assert saved["verdict"] == advice.verdict
    ev = saved["evidence"]
    assert set(ev["scores"]) == {ev["network"], "gradient_boosting", "linear"}
    assert {"diff", "se", "clear"} <= set(ev["network_vs_best_baseline"])
    curves = ev["learning_curves"]
    assert all(len(points) == 3 and points[0][0] < points[-1][0] for points in curves.values())
    assert len(saved["bakeoff"]) == 9 and len(saved["checklist"]) == 7
    assert all(item["evidence"] for item in saved["checklist"])
    assert (path / "advise.html").exists() and (path / "plots" / "learning_curve.png").exists()
    return saved


def test_small_table_gets_trees_or_a_linear_model(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 6))
    y = np.where((X[:, 0] > 0.2) & (X[:, 1] < 0.5) | (X[:, 2] > 1.2), "yes", "no")
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)]).assign(label=y)
    advice = deepfit.advise(frame, target="label", out=tmp_path / "a", **QUICK)
    assert advice.rule_verdict == "gradient_boosting"
    assert advice.verdict in ("gradient_boosting", "linear_model", "try_both")
    saved = _evidence_in_json(tmp_path / "a", advice)
    assert saved["modality"] == "tabular" and saved["rows"] == 500
    assert saved["next_command"].startswith("deepfit compare")


@pytest.mark.slow
def test_a_pattern_at_a_random_position_gets_deep_learning(tmp_path):
    X, y = motif_sequences()
    advice = deepfit.advise(X, y, out=tmp_path / "a", **QUICK)
    assert advice.rule_verdict == "try_both"  # 600 sequences: few labels
    assert advice.verdict == "deep_learning", advice.reasons
    assert any("evidence wins" in r for r in advice.reasons)
    saved = _evidence_in_json(tmp_path / "a", advice)
    scores = saved["evidence"]["scores"]
    assert scores["cnn1d"] > 0.85 and scores["gradient_boosting"] < 0.75
    assert saved["next_command"] == "deepfit train DATA --model cnn1d"


def test_two_hundred_images_get_transfer_learning_on_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 0.3, (200, 16, 16)).astype(np.float32)
    y = rng.integers(0, 2, 200)
    X[y == 1, 2:6, 2:6] += 0.7  # a bright square top left
    X[y == 0, 10:14, 10:14] += 0.7  # or bottom right
    np.savez(tmp_path / "images.npz", X=X, y=np.where(y == 1, "a", "b"))
    code = main(["-q", "advise", str(tmp_path / "images.npz"), "--modality", "image", "--json",
                 "--epochs", "4", "--patience", "2", "--budget-seconds", "600", "--out", str(tmp_path / "a")])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["verdict"] == "transfer_learning" and printed["modality"] == "image"
    assert "--weights DEFAULT" in printed["next_command"] and "--modality image" in printed["next_command"]
    assert printed["evidence"]["network"] == "cnn"
    assert (tmp_path / "a" / "advise.json").exists()


def _evidence(net: float, gb: float, lin: float, se: float = 0.01, latency=None) -> Evidence:
    best = "gradient_boosting" if gb >= lin else "linear"
    return Evidence("accuracy", {"cnn": net, "gradient_boosting": gb, "linear": lin}, "cnn",
                    Gap("cnn", best, net - max(gb, lin), se), Gap("gradient_boosting", "linear", gb - lin, se),
                    latency or {}, best)


def test_the_rule_table_and_the_evidence_override():
    assert matrix_row("tabular", 4_000, False)[0] == "gradient_boosting"
    assert matrix_row("tabular", 50_000, False)[0] == "try_both"
    assert matrix_row("image", 200, False)[0] == "transfer_learning"
    assert matrix_row("image", 60_000, False)[0] == "deep_learning"
    assert matrix_row("image", 200, True)[0] == "linear_model"
    # a network far ahead on 4,000 rows: the evidence wins, and the reasons say why
    verdict, reasons = decide("gradient_boosting", _evidence(0.95, 0.80, 0.78), False, None)
    assert verdict == "deep_learning" and "evidence wins" in reasons[-1]
    # ahead, but within the noise: the rule stands; gradient boosting and linear tie → linear
    assert decide("gradient_boosting", _evidence(0.83, 0.80, 0.795, se=0.03), False, None)[0] == "linear_model"
    assert decide("gradient_boosting", _evidence(0.80, 0.90, 0.70), False, None)[0] == "gradient_boosting"
    verdict, reasons = decide("gradient_boosting", _evidence(0.70, 0.60, 0.72), False, None)
    assert verdict == "linear_model" and "linear model is clearly ahead" in reasons[-1]
    # the rule said deep learning, the baselines are clearly ahead
    assert decide("deep_learning", _evidence(0.70, 0.90, 0.80), False, None)[0] == "gradient_boosting"
    # interpretability required: the network's lead is reported, not followed
    verdict, reasons = decide("linear_model", _evidence(0.95, 0.80, 0.79), True, None)
    assert verdict == "linear_model" and any("interpretability" in r for r in reasons)
    # a latency bound the network misses
    slow = _evidence(0.95, 0.80, 0.78, latency={"cnn": 5.0, "gradient_boosting": 0.1, "linear": 0.01})
    assert decide("try_both", slow, False, 1.0)[0] == "gradient_boosting"


def test_bad_budgets_are_named_errors(tmp_path):
    from deepfit.errors import SettingsError

    with pytest.raises(SettingsError, match="budget_seconds"):
        deepfit.advise("iris", budget_seconds=0, out=tmp_path / "a")
    assert main(["advise", "iris", "--latency-ms", "-1", "--out", str(tmp_path / "b")]) == 2
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_bootstrap_scores_against_a_hand_count():
    target = np.array([0, 1, 1, 0, 1])
    scores = bootstrap_scores("classification", target, [target, 1 - target], n=50)
    assert (scores[0] == 1).all() and (scores[1] == 0).all()
    values = np.array([1.0, 2.0, 3.0, 4.0])
    r2 = bootstrap_scores("regression", values, [values + 0.0], n=20)
    assert np.allclose(r2, 1.0)


def test_every_subsample_holds_every_class():
    from deepfit.tools.advise.advice import _order

    y = np.array([0] * 97 + [1, 2, 2])
    order = _order(y, "classification", seed=0)
    assert sorted(order) == list(range(100))
    assert set(y[order[:3]]) == {0, 1, 2}  # 25 % of 12 rows would still see the rare class
