"""Our metrics against scikit-learn's, computed two ways on the same data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from deepfit.evaluation.metrics import classification_metrics, metric_fn, regression_metrics


@pytest.mark.parametrize("n_classes,seed", [(2, 0), (3, 1), (10, 2)])
def test_classification_matches_sklearn(n_classes, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(500, n_classes, generator=g)
    target = torch.randint(0, n_classes, (500,), generator=g)
    ours = classification_metrics(logits, target)
    preds = logits.argmax(1).numpy()
    assert float(ours["accuracy"]) == pytest.approx(skm.accuracy_score(target, preds), abs=1e-12)
    assert float(ours["f1_macro"]) == pytest.approx(skm.f1_score(target, preds, average="macro"), abs=1e-12)


def test_f1_macro_with_a_class_never_present_matches_sklearn():
    # class 3 of 4 appears neither in the targets nor the predictions; class 2 only in predictions
    target = torch.tensor([0, 0, 1, 1, 1, 0])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 2, 1, 1, 0, 0]), 4).float()
    ours = classification_metrics(logits, target)
    expected = skm.f1_score(target, logits.argmax(1), average="macro", zero_division=0)
    assert float(ours["f1_macro"]) == pytest.approx(expected, abs=1e-12)


def test_regression_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.normal(100, 20, 300)
    pred = y + rng.normal(0, 10, 300)
    ours = regression_metrics(torch.from_numpy(pred).float(), torch.from_numpy(y).float())
    assert float(ours["mse"]) == pytest.approx(skm.mean_squared_error(y, pred), rel=1e-5)
    assert float(ours["rmse"]) == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)), rel=1e-5)
    assert float(ours["mae"]) == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-5)
    assert float(ours["r2"]) == pytest.approx(skm.r2_score(y, pred), rel=1e-5)


def test_regression_metrics_are_in_the_targets_units():
    mean, std = 50.0, 4.0
    standardised_pred, standardised_y = torch.tensor([0.0, 1.0]), torch.tensor([0.5, 1.0])
    out = metric_fn("regression", mean, std)(standardised_pred, standardised_y)
    assert float(out["mae"]) == pytest.approx(0.5 * 4.0 / 2)
