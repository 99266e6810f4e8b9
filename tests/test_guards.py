"""The guards during training, each with its mistake planted, and the end-of-run checklist."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import deepfit
from deepfit.errors import TrainingFailed
from deepfit.training.checkpoint import latest_checkpoint


def test_an_lr_that_produces_nan_stops_with_a_diagnosis_and_keeps_the_best_checkpoint(tmp_path):
    run = deepfit.train("digits", lr=1e3, epochs=10, progress=False, out=tmp_path / "run")
    reason = run.config["train"]["stop_reason"]
    assert reason.startswith("non-finite values: the training loss became NaN/Inf at step")
    assert "lr 1e+03" in reason and "features.0.weight" in reason and "10x lower" in reason
    assert run.config["train"]["epochs_run"] < 10
    assert any(w.startswith("non-finite values") for w in run.config["warnings"])
    best = latest_checkpoint(tmp_path / "run" / "checkpoints", "best")
    final = load_file(run.path / "model.safetensors")  # the best epoch's weights, restored
    assert best["epoch"] == run.config["train"]["best_epoch"]
    assert all(torch.equal(best["model"][k], final[k]) for k in final)
    assert deepfit.load(run.path).predict_proba(np.zeros((1, 64))).sum() == pytest.approx(1.0)
    assert {c["criterion"]: c["passed"] for c in run.metrics["checklist"]}["no NaN/Inf"] is False


def test_nan_from_the_first_epoch_is_a_named_failure_and_nothing_is_left(tmp_path):
    with pytest.raises(TrainingFailed, match="no usable epoch: non-finite values"):
        deepfit.train("digits", lr=1e8, epochs=3, progress=False, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_tiny_dataset_that_overfits_is_flagged(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 30)), rng.integers(0, 2, 60)  # labels are noise
    run = deepfit.train(X, y=y, hidden=(256, 256), dropout=0.0, epochs=60, patience=60,
                        lr=1e-2, progress=False, out=tmp_path / "run")
    assert any(w.startswith("overfitting: validation loss") for w in run.config["warnings"])
    assert {c["criterion"]: c["passed"] for c in run.metrics["checklist"]}[
        "validation loss within 0.1 or 2x of the training loss"] in (True, False)


def test_a_loss_that_does_not_decrease_is_flagged(tmp_path):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(300, 5)), rng.integers(0, 2, 300)
    run = deepfit.train(X, y=y, lr=1e-7, epochs=12, patience=50, progress=False, out=tmp_path / "r")
    assert any(w.startswith("loss not decreasing") for w in run.config["warnings"])


def test_a_clean_run_passes_its_checklist(tmp_path):
    run = deepfit.train("breast_cancer", progress=False, out=tmp_path / "run")
    checklist = {c["criterion"]: c for c in run.metrics["checklist"]}
    assert set(checklist) == {"training loss decreased", "validation loss stabilised",
                              "validation loss within 0.1 or 2x of the training loss", "no NaN/Inf",
                              "test close to validation", "better than the trivial predictor"}
    assert checklist["training loss decreased"]["passed"] and checklist["no NaN/Inf"]["passed"]
    assert checklist["better than the trivial predictor"]["passed"]
    assert all(c["passed"] for c in checklist.values())
    assert not any(w.startswith(("non-finite", "dead ReLU", "loss not decreasing", "overfitting"))
                   for w in run.config["warnings"])


def test_a_nan_validation_loss_names_its_own_epoch_and_is_said_once(tmp_path, caplog):
    """`deepfit train diabetes --lr 1e4 --clip-norm 0 --schedule none`: epoch 1's validation
    loss is NaN; the guard said "epoch 2", once as a warning, again as a decision, then in the
    error. Now: epoch 1, one warning, then the error."""
    import logging

    with caplog.at_level(logging.INFO, logger="deepfit"), \
            pytest.raises(TrainingFailed, match="no usable epoch: non-finite values") as failed:
        deepfit.train("diabetes", lr=1e4, clip_norm=0.0, schedule="none", epochs=5,
                      progress=False, out=tmp_path / "run")
    assert "the validation loss of epoch 1 was NaN/Inf" in str(failed.value)
    said = [r.getMessage() for r in caplog.records if "NaN/Inf" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("non-finite values: the validation loss of epoch 1")


def test_the_guard_counts_the_epoch_under_way_at_a_step_and_the_one_ended_at_its_end():
    from types import SimpleNamespace

    from deepfit.training.callbacks import NonFiniteGuard
    from deepfit.training.state import TrainState

    model = torch.nn.Linear(2, 1)
    trainer = SimpleNamespace(model=model, epoch_loss=torch.tensor(float("nan")),
                              optimizer=torch.optim.SGD(model.parameters(), lr=0.5))
    state = TrainState(epoch=2, step=40)  # two epochs done: the step is in epoch 3
    NonFiniteGuard(every=20).on_batch_end(trainer, state)
    assert "at step 40 (epoch 3, lr 0.5)" in state.stop_reason
    state = TrainState(epoch=3, step=60)  # the trainer counted the epoch before its end hooks
    NonFiniteGuard().on_epoch_end(trainer, state, {"epoch": 3, "train_loss": 1.0,
                                                   "val_loss": float("inf")})
    assert "the validation loss of epoch 3 was NaN/Inf (after step 60, lr 0.5)" in state.stop_reason
