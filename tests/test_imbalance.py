"""Class imbalance: detection, class weights, oversampling, focal loss and the decision threshold.

The 97:3 problem: 8 standard-normal features; the 3% minority is a tight cluster (sd 0.5) at
(2.5, 2.5) in the first two features. Trained without rebalancing, the network keeps predicting
the majority; with class weights, oversampling or focal loss it finds the cluster.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, precision_recall_curve
from sklearn.utils.class_weight import compute_class_weight

import deepfit
from deepfit.data.batches import InMemoryBatches, StreamingBatches, TensorSource
from deepfit.data.split import split_indices
from deepfit.errors import SettingsError
from deepfit.evaluation.metrics import monitor_names
from deepfit.evaluation.threshold import f1_at, f1_optimal_threshold
from deepfit.lifecycle import batches as batching
from deepfit.training import imbalance as imb
from deepfit.training.losses import CrossEntropy, FocalLoss

METHODS = ("none", "weights", "sampler", "focal")
# the same budget for every method; macro-F1 is what early stopping follows under imbalance
SETTINGS = {"epochs": 30, "patience": 8, "monitor": "val_f1_macro", "hidden": (32,), "threads": 1,
            "progress": False, "checkpoint": False, "report": False}


def imbalanced(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.03).astype(np.int64)
    X = rng.normal(0, 1, (n, 8))
    minority = y == 1
    X[minority, :2] = rng.normal(0, 0.5, (minority.sum(), 2)) + 2.5
    return X, y


@pytest.fixture(scope="module")
def data():
    return imbalanced()


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """One run per method; the sampler run records every batch plan the API builds."""
    X, y = data
    out, made = {}, []
    original = batching.make_batches

    def spy(*args, **kwargs):
        batches = original(*args, **kwargs)
        made.append(batches)
        return batches

    for method in METHODS:
        with pytest.MonkeyPatch.context() as mp:
            if method == "sampler":
                mp.setattr(batching, "make_batches", spy)
            out[method] = deepfit.train(X, y=y, imbalance=method, out=tmp_path_factory.mktemp(method) / "run",
                                        **SETTINGS)
    out["sampler_batches"] = made
    return out


def test_rebalancing_finds_the_minority_that_plain_training_misses(runs):
    recall = {m: runs[m].metrics["per_class"]["1"]["recall"] for m in METHODS}
    macro_f1 = {m: runs[m].metrics["f1_macro"] for m in METHODS}
    logging.getLogger("deepfit").warning("minority recall %s; macro-F1 %s", recall, macro_f1)
    assert recall["none"] < 0.5
    for method in ("weights", "sampler", "focal"):
        assert recall[method] >= 0.7, method
        assert macro_f1[method] > macro_f1["none"], method


def test_each_run_says_how_it_handled_the_imbalance(runs):
    for method in METHODS:
        config = runs[method].config
        assert config["train"]["imbalance_method"] == method
        assert config["data"]["class_counts"] == {"0": 2711, "1": 89}
        assert config["data"]["imbalance_ratio"] == pytest.approx(2711 / 89)
        assert any(d.startswith("class imbalance: majority/minority ratio 30.5:1") for d in config["decisions"])
    assert any("oversampling the training split" in d for d in runs["sampler"].config["decisions"])


def test_the_sampler_never_touches_validation_or_test(runs, data):
    _, y = data
    splits = split_indices(pd.Series(y), "classification", 0.15, 0.15, 0)
    train, val = runs["sampler_batches"]
    assert train.weights is not None and train.n == len(splits.train)
    assert val.weights is None and not val.shuffle and val.n == len(splits.val)
    # validation is read in its natural order and distribution
    val_y = torch.cat([yb for _, yb in val.eval_batches()])
    np.testing.assert_array_equal(val_y.numpy(), y[splits.val])
    # the test metrics count every test row once, with its natural class counts
    metrics = runs["sampler"].metrics
    assert metrics["n"] == len(splits.test)
    assert {k: v["support"] for k, v in metrics["per_class"].items()} == {
        str(c): int((y[splits.test] == c).sum()) for c in (0, 1)}
    # while the training epochs are drawn roughly balanced from the training rows
    order = train.order(0)
    assert set(order.tolist()) <= set(range(train.n))
    share = float(train.y[order].float().mean())
    assert 0.4 < share < 0.6


def test_oversampling_is_deterministic_per_epoch_and_the_same_on_both_paths():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(500, 3, generator=g)
    y = (torch.rand(500, generator=g) < 0.1).long()
    weights = imb.sample_weights(y, imb.class_counts(y, 2))
    fast = InMemoryBatches(X, y, 32, seed=7, weights=weights)
    again = InMemoryBatches(X, y, 32, seed=7, weights=weights)
    stream = StreamingBatches(TensorSource(X, y), 32, seed=7, workers=0, weights=weights)
    for epoch in (0, 3):
        a = [yb for _, yb in fast.epoch(epoch)]
        assert all(torch.equal(u, v) for u, v in zip(a, [yb for _, yb in again.epoch(epoch)]))
        assert all(torch.equal(u, v) for u, v in zip(a, [yb for _, yb in stream.epoch(epoch)]))
        resumed = [yb for _, yb in fast.epoch(epoch, start=5)]  # a resumed epoch continues the same draw
        assert all(torch.equal(u, v) for u, v in zip(a[5:], resumed))
    assert not torch.equal(fast.order(0), fast.order(1))
    drawn = torch.cat([y[fast.order(e)] for e in range(20)]).float().mean()
    assert 0.45 < float(drawn) < 0.55  # classes drawn equally often
    with pytest.raises(ValueError):
        InMemoryBatches(X, y, 32, shuffle=False, weights=weights)  # never for evaluation batches


def test_class_weights_are_inverse_frequency_from_the_training_split(runs, data):
    _, y = data
    train_rows = split_indices(pd.Series(y), "classification", 0.15, 0.15, 0).train
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y[train_rows])
    counts = list(runs["weights"].config["data"]["class_counts"].values())
    assert counts == np.bincount(y[train_rows]).tolist()  # counted on the training rows only
    np.testing.assert_allclose(imb.class_weights(counts).numpy(), expected, rtol=1e-6)


def test_auto_reweights_above_three_to_one_and_says_so():
    y = torch.tensor([0] * 80 + [1] * 20)
    found, why = imb.resolve("auto", y, 2)
    assert found.method == "weights" and found.ratio == 4.0
    assert "exceeds 3" in why and "class weights" in why
    found, why = imb.resolve("auto", torch.tensor([0] * 70 + [1] * 30), 2)
    assert found.method == "none" and "no rebalancing" in why
    with pytest.raises(SettingsError, match="imbalance must be one of"):
        imb.resolve("smote", y, 2)


def test_auto_is_the_default_and_lands_in_the_config(data, tmp_path):
    X, y = data
    run = deepfit.train(X, y=y, out=tmp_path / "run", **{**SETTINGS, "epochs": 2, "monitor": "val_loss"})
    config = json.loads((run.path / "config.json").read_text())
    assert config["train"]["imbalance"] == "auto" and config["train"]["imbalance_method"] == "weights"
    assert any("exceeds 3: inverse-frequency class weights" in d for d in config["decisions"])
    assert any("imbalanced classes (30.5:1)" in w for w in config["warnings"])


def test_focal_loss_is_weighted_cross_entropy_at_gamma_0_and_follows_its_formula():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(64, 3, generator=g), torch.randint(0, 3, (64,), generator=g)
    alpha = torch.tensor([0.5, 1.0, 3.0])
    torch.testing.assert_close(FocalLoss(0.0, alpha)(logits, target), CrossEntropy(alpha)(logits, target))
    p = F.softmax(logits, 1)[torch.arange(64), target]
    by_hand = -(alpha[target] * (1 - p) ** 2 * p.log()).sum() / alpha[target].sum()
    torch.testing.assert_close(FocalLoss(2.0, alpha)(logits, target), by_hand)
    torch.testing.assert_close(FocalLoss(2.0)(logits, target), -((1 - p) ** 2 * p.log()).mean())
    with pytest.raises(SettingsError):
        FocalLoss(-1.0)


def test_f1_optimal_threshold_matches_a_search_over_scikit_learns_curve():
    rng = np.random.default_rng(1)
    target = (rng.random(400) < 0.1).astype(int)
    scores = np.clip(rng.normal(0.2 + 0.4 * target, 0.2), 0, 1).round(3)  # ties included
    threshold, best = f1_optimal_threshold(scores, target)
    precision, recall, _ = precision_recall_curve(target, scores)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0)
    assert best == pytest.approx(f1.max(), abs=1e-12)
    assert f1_score(target, scores >= threshold) == pytest.approx(best, abs=1e-12)
    assert f1_at(scores, target, threshold) == pytest.approx(best, abs=1e-12)


def test_the_f1_optimal_threshold_is_saved_and_used_by_predict(data, tmp_path):
    X, y = data
    run = deepfit.train(X, y=y, out=tmp_path / "run", imbalance="none", threshold="auto",
                        **{**SETTINGS, "epochs": 8, "patience": 8, "monitor": "val_loss"})
    threshold = json.loads((run.path / "model.json").read_text())["threshold"]
    assert threshold is not None and threshold != 0.5
    assert run.metrics["threshold"] == threshold
    assert any(d.startswith(f"decision threshold {threshold:.4g}") for d in run.config["decisions"])
    loaded = deepfit.load(run.path)
    assert loaded.threshold == threshold
    # it is the threshold that maximises F1 on the validation split
    splits = split_indices(pd.Series(y), "classification", 0.15, 0.15, 0)
    p_val = loaded.predict_proba(X[splits.val])[:, 1]
    _, best = f1_optimal_threshold(p_val, y[splits.val])
    assert f1_score(y[splits.val], p_val >= threshold) == pytest.approx(best, abs=1e-12)
    # predict (and predict_frame, which the CLI writes) apply it; predict_proba is unchanged
    proba = loaded.predict_proba(X)
    np.testing.assert_array_equal(proba, run.predict_proba(X))
    expected = (proba[:, 1] >= threshold).astype(int)
    np.testing.assert_array_equal(loaded.predict(X).astype(int), expected)
    np.testing.assert_array_equal(loaded.predict_frame(X)["prediction"].astype(int), expected)
    assert (expected != proba.argmax(1)).any()  # the threshold changed some predictions
    test = splits.test
    assert run.metrics["per_class"]["1"]["recall"] == pytest.approx(
        float(expected[test][y[test] == 1].mean()), abs=1e-12)


def test_threshold_and_monitor_settings_are_checked_before_training(data, tmp_path):
    X, y = data
    assert "val_balanced_accuracy" in monitor_names("classification")
    assert "val_f1_macro" in monitor_names("classification")
    for bad, message in (({"threshold": 1.5}, "threshold must be in"),
                         ({"threshold": "best"}, "threshold must be auto"),
                         ({"monitor": "val_auc"}, "cannot monitor 'val_auc'"),
                         ({"imbalance": "smote"}, "imbalance must be one of"),
                         ({"focal_gamma": -1}, "focal_gamma")):
        with pytest.raises(SettingsError, match=message):
            deepfit.train(X, y=y, out=tmp_path / "never", **{**SETTINGS, **bad})
        assert not (tmp_path / "never").exists()


def test_the_cli_takes_the_imbalance_threshold_and_monitor_flags(data, tmp_path, capsys):
    from deepfit.cli import main

    X, y = data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]).assign(label=np.where(y, "rare", "common"))
    frame.to_csv(tmp_path / "rare.csv", index=False)
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "rare.csv"), "--target", "label", "--imbalance", "focal",
                 "--focal-gamma", "1.5", "--threshold", "auto", "--monitor", "val_balanced_accuracy",
                 "--epochs", "3", "--threads", "1", "--no-checkpoint", "--no-report", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["train"]["imbalance"], config["train"]["focal_gamma"], config["train"]["threshold"],
            config["train"]["monitor"], config["train"]["report"]) == ("focal", 1.5, "auto",
                                                                        "val_balanced_accuracy", False)
    assert "per class" in capsys.readouterr().out
    threshold = json.loads((out / "model.json").read_text())["threshold"]
    assert main(["predict", str(out), str(tmp_path / "rare.csv"), "-o", str(tmp_path / "p.csv")]) == 0
    predicted = pd.read_csv(tmp_path / "p.csv")
    expected = np.where(predicted["proba_rare"] >= threshold, "rare", "common")  # 'rare' sorts second
    np.testing.assert_array_equal(predicted["prediction"], expected)
