"""The guards and the end-of-run checklist, calibrated on real runs (issue 25, item 3).

Good runs (the bundled sets, a table, images, sequences, default settings): no guard warning and
every checklist item passed. Planted faults (an LR far too high or too low, labels independent
of the features, a tiny training set with a huge model and no early stopping, a run cut short,
a test set unlike the training data, NaN): the guard or item that names the fault fires, and the
diagnosis that would be wrong for it does not. Each run is trained once per module (a few
seconds each); the rules' functions are also tested on histories written out below.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

import deepfit
from deepfit.evaluation.checklist import success_checklist
from deepfit.training.callbacks.guards import (
    LR_TOO_HIGH,
    LossNotDecreasing,
    expected_trivial_loss,
    not_decreasing,
    overfitting,
    trivial_loss,
)
from deepfit.training.losses import MSE, CrossEntropy
from generated import motif_sequences

pytestmark = pytest.mark.usefixtures("one_thread", "keep_logging")

GUARDS = ("non-finite values", "loss not decreasing", "overfitting", "dead ReLU",
          "vanishing gradients", "dead units")
DECREASED, STABILISED = "training loss decreased", "validation loss stabilised"
GAP = "validation loss within 0.1 or 2x of the training loss"
NAN, CLOSE, TRIVIAL = "no NaN/Inf", "test close to validation", "better than the trivial predictor"
ITEMS = {DECREASED, STABILISED, GAP, NAN, CLOSE, TRIVIAL}


# ---------------------------------------------------------------------------------- the data
def table(n: int = 1000, seed: int = 0, scale: float = 1.0) -> pd.DataFrame:
    """A regression table (california-like): a linear part, a sine and an interaction, noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8)) * scale
    y = X[:, 0] * 2 + np.sin(X[:, 1] * 2) + X[:, 2] * X[:, 3] + rng.normal(0, 0.3, n)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(8)]).assign(y=y)


def images(n_per_class: int = 30, classes: int = 3, seed: int = 0):
    """Float images [N, 1, 8, 8]: a bright bar whose row tells the class, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    X = rng.uniform(0, 0.3, size=(len(y), 1, 8, 8)).astype(np.float32)
    X[np.arange(len(y)), 0, 2 * y + 1, :] += 0.7
    return X, y



def digits(rows: slice = slice(None), shuffle: bool = False):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[rows], (np.random.default_rng(1).permutation(y) if shuffle else y)[rows]


def noise(n: int, features: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)), rng.integers(0, 2, n)


def shuffled_table():
    frame = table()
    return frame.assign(y=np.random.default_rng(3).permutation(frame["y"].to_numpy()))


# ------------------------------------------------------------------------- the calibration set
# name → (source, settings); sources are names or functions of no argument
GOOD = {
    "digits (make demo)": ("digits", {}),
    "breast_cancer": ("breast_cancer", {}),
    "wine": ("wine", {}),
    "iris": ("iris", {}),
    "diabetes": ("diabetes", {}),
    "table regression": (table, {"target": "y"}),
    "images": (images, {}),
    "sequences": (motif_sequences, {}),
}
HUGE = {"hidden": (512, 512), "dropout": 0.0, "weight_decay": 0.0, "lr": 1e-2}
# name → (source, settings, what must fire: guards and failed items, the wrong diagnoses)
BAD = {
    "lr far too high: collapses to the prior": (
        "digits", {"lr": 3.0, "epochs": 30},
        {"loss not decreasing", "dead ReLU", "dead units", TRIVIAL},
        {"overfitting", "vanishing gradients"}),
    "lr far too low": (
        "digits", {"lr": 1e-7, "epochs": 12},
        {"loss not decreasing", DECREASED, TRIVIAL}, {"overfitting"}),
    "lr far too low, binary": (
        "breast_cancer", {"lr": 1e-7, "epochs": 12, "patience": 50},
        {"loss not decreasing", DECREASED, TRIVIAL}, {"overfitting"}),
    "labels shuffled": (
        lambda: digits(shuffle=True), {},
        {"loss not decreasing", TRIVIAL}, {"overfitting", GAP}),
    "target independent of the features (regression)": (
        shuffled_table, {"target": "y"},
        {"loss not decreasing", TRIVIAL}, {"overfitting", GAP}),
    "tiny noise set, huge model, no early stopping": (
        lambda: noise(60, 30, 0), {"hidden": (256, 256), "dropout": 0.0, "epochs": 60,
                                   "patience": 60, "lr": 1e-2},
        {"overfitting", TRIVIAL}, set()),
    "tiny training set, huge model, no early stopping or regularisation": (
        lambda: digits(slice(0, 80)), {**HUGE, "epochs": 40, "patience": 40},
        {"overfitting", GAP}, {"loss not decreasing", TRIVIAL}),
    "stopped while still improving": (
        "wine", {"epochs": 30}, {STABILISED}, {"overfitting", "loss not decreasing", TRIVIAL}),
    "test set unlike the training data": (
        table, {"target": "y", "test_size": 0.0, "test": "shifted.csv"},
        {CLOSE}, {"overfitting", "loss not decreasing"}),
    "lr that produces NaN": (
        "digits", {"lr": 1e3, "epochs": 10}, {"non-finite values", NAN},
        {"overfitting", "vanishing gradients"}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name → the finished Run, trained on first use."""
    done: dict[str, deepfit.Run] = {}
    where = tmp_path_factory.mktemp("calibration")
    table(400, seed=9, scale=2.5).to_csv(where / "shifted.csv", index=False)

    def run(name: str):
        if name not in done:
            source, settings = (GOOD | BAD)[name][:2]
            settings = {"progress": False, "checkpoint": False, "report": False, **settings}
            if "test" in settings:
                settings["test"] = str(where / settings["test"])
            data = source() if callable(source) else source
            out = where / f"run{len(done)}"
            done[name] = (deepfit.train(*data, out=out, **settings) if isinstance(data, tuple)
                          else deepfit.train(data, out=out, **settings))
        return done[name]

    return run


def guard_warnings(run) -> dict[str, str]:
    return {key: w for w in run.config["warnings"] for key in GUARDS if w.startswith(key + ":")}


def failed_items(run) -> dict[str, str]:
    return {c["criterion"]: c["evidence"] for c in run.metrics["checklist"] if not c["passed"]}


@pytest.mark.parametrize("name", GOOD)
def test_a_good_run_has_no_guard_warning_and_passes_every_item(runs, name):
    run = runs(name)
    assert guard_warnings(run) == {}
    assert failed_items(run) == {}
    assert {c["criterion"] for c in run.metrics["checklist"]} == ITEMS


@pytest.mark.parametrize("name", BAD)
def test_a_planted_fault_fires_what_names_it_and_not_a_wrong_diagnosis(runs, name):
    run = runs(name)
    expected, wrong = BAD[name][2:]
    found = set(guard_warnings(run)) | set(failed_items(run))
    assert expected <= found, f"missed: {expected - found}"
    assert not wrong & found, f"wrong diagnosis: {wrong & found}"


def test_the_guards_say_what_they_measured(runs):
    said = guard_warnings(runs("labels shuffled"))["loss not decreasing"]
    assert "best validation loss" in said and "class frequencies" in said and "labels" in said
    said = guard_warnings(runs("lr far too low"))["loss not decreasing"]
    assert "no better than 2.3" in said  # ln 10: ten classes, equally frequent
    assert "the learning rate is too low (lr 1e-07)" in said.lower()
    said = guard_warnings(runs("lr far too high: collapses to the prior"))["loss not decreasing"]
    assert LR_TOO_HIGH in said.lower() and "10x lower" in said
    said = guard_warnings(runs("target independent of the features (regression)"))[
        "loss not decreasing"]
    assert "predicting the mean without" in said and "class frequencies" not in said
    said = guard_warnings(runs("tiny training set, huge model, no early stopping or "
                               "regularisation"))["overfitting"]
    assert said.startswith("overfitting: validation loss has stayed above") and "fell to" in said
    evidence = failed_items(runs("stopped while still improving"))[STABILISED]
    assert "still falling: more epochs would help" in evidence


@pytest.mark.parametrize("name", GOOD)
def test_replayed_epoch_by_epoch_the_rules_stay_quiet_on_a_good_run(runs, name):
    """The callbacks see the history grow an epoch at a time: no prefix of a good run fires."""
    history = runs(name).history
    for epoch in range(1, len(history) + 1):
        assert overfitting(history[:epoch]) is None, epoch
        assert not_decreasing(history[:epoch], None) is None, epoch


# --------------------------------------------------------------- the rules on written histories
def history(train: list[float], val: list[float]) -> list[dict[str, float]]:
    return [{"train_loss": t, "val_loss": v} for t, v in zip(train, val, strict=True)]


def items(h, best_epoch: int, **kw) -> dict[str, dict]:
    return {i["criterion"]: i for i in success_checklist(h, best_epoch, {}, "classification", [],
                                                         **kw)}


def test_a_ratio_near_zero_loss_is_no_gap():
    """The issue's run: 0.0006 training, 0.0227 validation loss is "37.8x" but no gap."""
    h = history([0.5, 0.1, 0.01, 0.0006], [0.4, 0.1, 0.03, 0.0227])
    assert items(h, 4)[GAP]["passed"]
    h = history([0.5, 0.1, 0.01, 0.004], [0.4, 0.3, 0.29, 0.285])  # 0.28 above, 71x: a gap
    assert not items(h, 4)[GAP]["passed"] and "+0.281" in items(h, 4)[GAP]["evidence"]
    h = history([1.0, 0.9, 0.5], [1.0, 0.95, 0.9])  # 0.4 above but 1.8x: no gap
    assert items(h, 3)[GAP]["passed"]


def test_the_patience_epochs_after_the_best_are_not_a_failure_to_stabilise():
    val = [1.0, 0.5, 0.3, 0.2, 0.15, 0.1] + [0.1 * (1 + 0.05 * i) for i in range(1, 11)]
    h = history([1.0] * len(val), val)
    assert items(h, 6)[STABILISED]["passed"]  # up 50% over 10 epochs past the best: expected
    h = history([1.0] * 8, [1.0, 0.8, 0.6, 0.5, 0.4, 0.35, 0.3, 0.27])  # still falling
    assert not items(h, 8)[STABILISED]["passed"]


def test_one_noisy_epoch_decides_nothing():
    train = [2.0, 1.0, 0.6, 0.4, 0.3, 0.3, 0.31, 0.3, 0.45, 0.29, 0.3, 0.32]  # a bad batch
    val = [1.9, 0.9, 0.5, 0.3, 0.25, 0.2, 0.2, 0.9, 0.19, 0.2, 0.19, 0.2]  # one wild epoch
    h = history(train, val)
    assert not_decreasing(h, math.log(10)) is None and overfitting(h) is None
    assert items(h, 9)[DECREASED]["passed"]


def test_a_validation_loss_that_rises_and_stays_up_is_overfitting():
    train = [0.7, 0.3, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.001, 0.001]
    val = [0.7, 0.45, 0.4, 0.42, 0.48, 0.55, 0.6, 0.62, 0.65, 0.7, 0.72]
    said = overfitting(history(train, val))
    assert said is not None and "up from 0.45" in said
    back = [*val[:8], 0.45, 0.41, 0.4]  # an excursion it comes back from: not overfitting
    assert overfitting(history(train, back)) is None


def test_the_trivial_loss_is_the_entropy_of_the_classes_or_the_variance():
    y = torch.tensor([0, 0, 0, 1])
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert trivial_loss(CrossEntropy(), y) == pytest.approx(entropy, rel=1e-5)
    # balancing weights make the best constant uniform: ln 2
    assert trivial_loss(CrossEntropy(torch.tensor([1 / 3, 1.0])), y) == pytest.approx(math.log(2))
    values = torch.tensor([1.0, 2.0, 3.0, 6.0])
    assert trivial_loss(MSE(), values) == pytest.approx(float(values.var(unbiased=False)))
    assert trivial_loss(MSE(), torch.zeros(0)) is None


def test_not_decreasing_names_which_of_its_two_rules_fired():
    flat = history([0.70, 0.71, 0.69, 0.70, 0.70, 0.71], [0.5, 0.45, 0.4, 0.38, 0.37, 0.36])
    assert not_decreasing(flat, reference=0.69).startswith("the training loss has not gone down")
    stuck = history([2.4, 2.3, 2.2, 2.1, 2.0], [2.31, 2.3, 2.31, 2.32, 2.33])
    assert "no better than 2.303" in not_decreasing(stuck, reference=math.log(10))
    assert not_decreasing(stuck[:2], reference=math.log(10)) is None  # too few epochs to say


def test_test_close_to_validation_allows_the_sampling_error_of_small_splits():
    h = [{"train_loss": 0.1, "val_loss": 0.05, "val_accuracy": 1.0}]
    small = success_checklist(h, 1, {"accuracy": 0.9419, "n": 86}, "classification", [],
                              n_val=86)
    large = success_checklist(h, 1, {"accuracy": 0.9419, "n": 5000}, "classification", [],
                              n_val=5000)
    close = {i["criterion"]: i for i in small}[CLOSE]
    assert close["passed"] and "3 standard errors on 86 validation and 86 test rows" in close["evidence"]
    assert not {i["criterion"]: i for i in large}[CLOSE]["passed"]  # 0.058 off on 5,000 rows


def test_on_splits_too_small_to_compare_test_and_validation_the_item_says_so():
    """5 + 5 rows: 3 standard errors were a "tolerance 1.06" for accuracy, 2.32 for R²."""
    for task, metric, val, test in (("classification", "accuracy", 0.6, 0.6),
                                    ("regression", "r2", 0.49, -0.25)):
        h = [{"train_loss": 0.5, "val_loss": 0.5, f"val_{metric}": val}]
        close = {i["criterion"]: i for i in success_checklist(
            h, 1, {metric: test, "n": 5}, task, [], n_val=5)}[CLOSE]
        assert close["passed"] and "tolerance" not in close["evidence"]
        assert close["evidence"].startswith("not applicable: too few rows to compare (5 "
                                            "validation and 5 test rows)")


def test_no_count_of_one_in_a_plural():
    """"averaged over the first 1 epochs … over the last 1", "over the last 1 epochs it fell by 0"."""
    h = history([2.4, 2.4], [2.3, 2.3])
    said = " ".join(i["evidence"] for i in items(h, 1).values())
    assert "in the first epoch" in said and "in the last epoch it did not fall" in said
    assert not re.search(r"\b1 epochs\b|last 1\b|first 1\b", said), said
    h = history([2.4, 2.4, 2.41], [2.3, 2.3, 2.31])
    said = not_decreasing(h, None)
    assert said.startswith("the training loss has not gone down: 2.4 in the first epoch, 2.41 "
                           "in the last epoch")


def test_the_trivial_loss_of_few_rows_is_corrected_for_fitting_them():
    """The mean of 5 validation rows scores 4/5 of what it scores on new rows."""
    values = torch.tensor([1.0, 2.0, 3.0, 6.0, 0.0])
    assert expected_trivial_loss(MSE(), values) == pytest.approx(float(values.var(unbiased=True)))
    y = torch.tensor([0, 1] * 5)
    assert expected_trivial_loss(CrossEntropy(), y) == pytest.approx(math.log(2) + 1 / 20)


def small_regression(seed: int):
    """The newcomer's 30-row CSV: y = x1 + noise (5 validation rows)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=30)
    return pd.DataFrame({"x1": x, "y": x + rng.normal(0, 0.5, 30)})


@pytest.mark.parametrize("seed", range(3))
def test_a_small_noisy_regression_that_learns_slowly_is_not_called_stuck(tmp_path, seed):
    run = deepfit.train(small_regression(seed), target="y", epochs=20, progress=False,
                        report=False, checkpoint=False, out=tmp_path / "r")
    assert "loss not decreasing" not in guard_warnings(run)


def test_an_early_warning_the_end_of_the_run_contradicts_is_withdrawn():
    from deepfit.training.state import TrainState

    guard = LossNotDecreasing()
    guard.reference, guard.rows = 1.0, 200
    state = TrainState()
    state.history = history([1.2, 1.1, 1.05] + [1.0] * 7, [1.0] * 10)  # stuck at epoch 10
    state.epoch = 10
    guard.on_epoch_end(None, state, state.history[-1])
    assert state.warnings and state.warnings[0].startswith("loss not decreasing: after 10 epochs")
    state.history += history([0.9, 0.7, 0.5, 0.4, 0.35], [0.9, 0.7, 0.6, 0.55, 0.5])
    guard.on_fit_end(None, state)
    assert state.warnings == []
    # a guard that holds at the end stays
    state.history = history([1.2, 1.1, 1.05] + [1.0] * 12, [1.0] * 15)
    state.warnings = []
    guard.on_epoch_end(None, state, state.history[-1])
    guard.on_fit_end(None, state)
    assert len(state.warnings) == 1


def test_a_still_falling_or_small_validation_loss_is_judged_at_the_end_only():
    from deepfit.training.state import TrainState

    guard = LossNotDecreasing()
    guard.reference, guard.rows = 1.0, 200
    state = TrainState(epoch=10)
    state.history = history([1.5 - 0.05 * i for i in range(10)], [1.2 - 0.02 * i for i in range(10)])
    guard.on_epoch_end(None, state, state.history[-1])  # 1.02 → 1.0 is no better, but falling
    assert state.warnings == []
    guard.rows = 5
    state.history = history([1.2, 1.1, 1.05] + [1.0] * 7, [1.0] * 10)
    guard.on_epoch_end(None, state, state.history[-1])
    assert state.warnings == []
    guard.on_fit_end(None, state)
    assert len(state.warnings) == 1
