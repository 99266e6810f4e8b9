"""The test-time metric set (counts from scikit-learn's confusion matrix, ratios of our own; AUC and AP
per class) against scikit-learn's high-level metric functions on the same predictions, to 1e-6."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as skm

import deepfit
from deepfit.data.split import split_indices
from deepfit.errors import SettingsError
from deepfit.evaluation import full_metrics as fm

TOL = 1e-6


def sklearn_classification(y: np.ndarray, proba: np.ndarray, preds: np.ndarray) -> dict:
    """The reference: every metric of the set, computed by scikit-learn."""
    n_classes = proba.shape[1]
    labels = list(range(n_classes))
    ref = {"accuracy": skm.accuracy_score(y, preds), "balanced_accuracy": skm.balanced_accuracy_score(y, preds)}
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        ref[f"{name}_macro"] = fn(y, preds, average="macro", zero_division=0)
        ref[f"{name}_weighted"] = fn(y, preds, average="weighted", zero_division=0)
        ref[f"{name}_per_class"] = fn(y, preds, average=None, labels=labels, zero_division=0)
    present = np.unique(y)
    if n_classes == 2:
        ref["roc_auc"] = skm.roc_auc_score(y, proba[:, 1])
        ref["average_precision"] = skm.average_precision_score(y, proba[:, 1])
    else:
        onehot = np.eye(n_classes)[y][:, present]
        ref["roc_auc"] = skm.roc_auc_score(onehot, proba[:, present], average="macro")
        ref["average_precision"] = skm.average_precision_score(onehot, proba[:, present], average="macro")
    ref["log_loss"] = skm.log_loss(y, proba, labels=labels)
    ref["confusion_matrix"] = skm.confusion_matrix(y, preds, labels=labels)
    return ref


def assert_same(ours: dict, ref: dict) -> None:
    for key in ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
                "precision_weighted", "recall_weighted", "f1_weighted", "roc_auc",
                "average_precision", "log_loss"):
        assert ours[key] == pytest.approx(ref[key], abs=TOL), key
    for name in ("precision", "recall", "f1"):
        got = [v[name] for v in ours["per_class"].values()]
        np.testing.assert_allclose(got, ref[f"{name}_per_class"], atol=TOL, err_msg=name)
    np.testing.assert_array_equal(np.asarray(ours["confusion_matrix"]), ref["confusion_matrix"])


def random_case(n_classes: int, seed: int, n: int = 600) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, n_classes, (n,), generator=g)
    logits = torch.randn(n, n_classes, generator=g) + 1.5 * torch.nn.functional.one_hot(target, n_classes)
    return logits, target


@pytest.mark.parametrize("n_classes,seed", [(2, 0), (3, 1), (10, 2)])
def test_classification_metrics_match_sklearn(n_classes, seed):
    logits, target = random_case(n_classes, seed)
    ev = fm.evaluate_outputs("classification", logits, target)
    proba = torch.softmax(logits.double(), 1).numpy()
    np.testing.assert_allclose(ev.proba, proba)
    assert_same(ev.metrics, sklearn_classification(target.numpy(), proba, proba.argmax(1)))
    assert ev.metrics["n"] == len(target)
    supports = [v["support"] for v in ev.metrics["per_class"].values()]
    assert supports == np.bincount(target.numpy(), minlength=n_classes).tolist()


def test_a_class_absent_from_targets_or_predictions_follows_sklearns_rules():
    # 4 classes: class 3 never occurs; class 2 is predicted but never true
    target = torch.tensor([0, 0, 1, 1, 1, 0, 1, 0, 0, 1])
    predicted = torch.tensor([0, 2, 1, 1, 0, 0, 1, 2, 0, 1])
    logits = 4.0 * torch.nn.functional.one_hot(predicted, 4).double() + 0.1 * torch.arange(10)[:, None] % 1
    ev = fm.evaluate_outputs("classification", logits, target)
    proba = ev.proba
    assert_same(ev.metrics, sklearn_classification(target.numpy(), proba, predicted.numpy()))


def test_a_single_class_in_the_targets_leaves_the_ranking_metrics_undefined():
    ev = fm.evaluate_outputs("classification", torch.randn(20, 2), torch.zeros(20, dtype=torch.long))
    assert ev.metrics["roc_auc"] is None and ev.metrics["average_precision"] is None
    json.dumps(ev.metrics, allow_nan=False)  # valid JSON throughout


def test_a_decision_threshold_gives_the_predictions_the_metrics_are_computed_on():
    logits, target = random_case(2, 5)
    ev = fm.evaluate_outputs("classification", logits, target, classes=["no", "yes"], threshold=0.8)
    proba = torch.softmax(logits.double(), 1).numpy()
    preds = (proba[:, 1] >= 0.8).astype(int)
    np.testing.assert_array_equal(ev.preds, preds)
    assert_same(ev.metrics, sklearn_classification(target.numpy(), proba, preds))
    assert list(ev.metrics["per_class"]) == ["no", "yes"] and ev.metrics["threshold"] == 0.8


def test_regression_metrics_match_sklearn_in_the_targets_units():
    rng = np.random.default_rng(0)
    y = rng.normal(100, 20, 300)
    pred = y + rng.normal(0, 10, 300)
    mean, std = 90.0, 15.0
    ev = fm.evaluate_outputs("regression", torch.from_numpy((pred - mean) / std)[:, None],
                             torch.from_numpy((y - mean) / std), target_mean=mean, target_std=std)
    m = ev.metrics
    assert m["mse"] == pytest.approx(skm.mean_squared_error(y, pred), abs=TOL)
    assert m["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, pred)), abs=TOL)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), abs=TOL)
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred), abs=TOL)
    assert m["n"] == 300
    np.testing.assert_allclose(ev.preds, pred, rtol=1e-12)


def test_segmentation_metrics_match_sklearn_over_all_pixels():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 3, (4, 16, 16), generator=g)
    preds = torch.where(torch.rand(4, 16, 16, generator=g) < 0.7, target, torch.randint(0, 3, (4, 16, 16), generator=g))
    flat_t, flat_p = target.reshape(-1).numpy(), preds.reshape(-1).numpy()
    assert fm.compute("iou", preds, target, num_classes=3) == pytest.approx(
        skm.jaccard_score(flat_t, flat_p, average="macro"), abs=TOL)
    assert fm.compute("dice", preds, target, num_classes=3) == pytest.approx(
        skm.f1_score(flat_t, flat_p, average="macro"), abs=TOL)


def test_perplexity_is_the_exponential_of_the_mean_token_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, tokens = torch.randn(3, 7, 11, generator=g), torch.randint(0, 11, (3, 7), generator=g)
    expected = math.exp(float(torch.nn.functional.cross_entropy(logits.reshape(-1, 11), tokens.reshape(-1))))
    assert fm.compute("perplexity", logits, tokens) == pytest.approx(expected, rel=1e-5)


def _lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def test_bleu_and_rouge_l_against_hand_computations():
    preds = ["the cat sat on the mat", "a quick brown dog jumps"]
    refs = ["the cat is on the mat", "the quick brown fox jumps"]
    assert fm.compute("bleu", refs, refs) == pytest.approx(1.0)
    # BLEU-2 by hand: clipped n-gram precisions over the corpus, geometric mean, brevity penalty 1
    p1 = (5 + 3) / (6 + 5)  # unigrams: the the cat on mat | quick brown jumps
    p2 = (3 + 1) / (5 + 4)  # bigrams: "the cat", "on the", "the mat" | "quick brown"
    assert fm.compute("bleu", preds, refs, n_gram=2) == pytest.approx(math.sqrt(p1 * p2), abs=TOL)
    expected = []
    for p, r in zip(preds, refs):
        a, b = p.split(), r.split()
        lcs = _lcs(a, b)
        precision, recall = lcs / len(a), lcs / len(b)
        expected.append(2 * precision * recall / (precision + recall))
    assert fm.compute("rouge_l", preds, refs) == pytest.approx(np.mean(expected), abs=1e-5)


def test_metrics_by_name_and_unknown_names():
    logits, target = random_case(3, 4)
    proba = torch.softmax(logits.double(), 1)
    assert fm.compute("balanced_accuracy", proba, target) == pytest.approx(
        skm.balanced_accuracy_score(target, proba.argmax(1)), abs=TOL)
    assert fm.compute("r2", torch.tensor([1.0, 2.0, 3.5]), torch.tensor([1.0, 2.0, 3.0])) == pytest.approx(
        skm.r2_score([1, 2, 3], [1, 2, 3.5]), abs=TOL)
    assert {"iou", "dice", "perplexity", "bleu", "rouge_l", "roc_auc", "log_loss"} <= set(fm.metric_names())
    with pytest.raises(SettingsError, match="unknown metric 'auc'"):
        fm.compute("auc", proba, target)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    # two epochs: far from perfect, so that every metric has something to measure
    return deepfit.train("digits", out=tmp_path_factory.mktemp("d") / "run", epochs=2, threads=1,
                         progress=False, checkpoint=False, report=False)


def test_a_runs_metrics_json_holds_the_whole_set_and_matches_sklearn(digits_run):
    saved = json.loads((digits_run.path / "metrics.json").read_text())
    assert {"accuracy", "f1_macro", "n", "balanced_accuracy", "precision_macro", "recall_weighted",
            "roc_auc", "average_precision", "log_loss", "per_class", "confusion_matrix"} <= set(saved)
    assert 0.3 < saved["accuracy"] < 0.99
    data = deepfit.modalities.load_source("digits")
    test = split_indices(data.y, "classification", 0.15, 0.15, 0).test
    loaded = deepfit.load(digits_run.path)
    X, labels = data.X.iloc[test], data.y.iloc[test]
    y = loaded.target.transform(labels)  # class codes, in the order of loaded.classes
    proba = loaded.predict_proba(X)
    preds = loaded.target.transform(pd.Series(loaded.predict(X)))
    assert_same(saved, sklearn_classification(y, proba, preds))
    assert list(saved["per_class"]) == [str(c) for c in loaded.classes]
    again = loaded.evaluate(X, labels)  # the same numbers on reload
    assert {k: again[k] for k in ("per_class", "confusion_matrix", "log_loss", "roc_auc")} == {
        k: saved[k] for k in ("per_class", "confusion_matrix", "log_loss", "roc_auc")}


def test_regression_runs_keep_their_metric_keys(tmp_path):
    run = deepfit.train("diabetes", out=tmp_path / "run", epochs=3, threads=1, progress=False,
                        checkpoint=False, report=False)
    assert {"mse", "rmse", "mae", "r2", "n"} <= set(json.loads((run.path / "metrics.json").read_text()))
