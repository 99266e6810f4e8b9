"""The Trainer against a hand-written PyTorch loop, and its callbacks' contracts."""

from __future__ import annotations

import copy

import pytest
import torch

from deepfit.data.batches import InMemoryBatches, epoch_generator
from deepfit.evaluation.metrics import classification_metrics
from deepfit.models import InputSpec, OutputSpec, create
from deepfit.training.callbacks import EarlyStopping, RestoreBestWeights
from deepfit.training.losses import CrossEntropy
from deepfit.training.state import Monitor
from deepfit.training.trainer import Trainer

CPU = torch.device("cpu")


def _data(n=300, d=10, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long() + (X[:, 2] > 1).long()
    return X, y.clamp(max=classes - 1)


def _model(seed=0):
    torch.manual_seed(seed)
    return create("mlp", InputSpec(10, 10), OutputSpec("classification", 3), hidden=(32, 16))


def test_trainer_equals_a_hand_written_loop_bit_for_bit():
    X, y = _data()
    epochs, batch, seed = 4, 32, 7
    ours, hand = _model(), _model()
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), hand.state_dict().values()))

    torch.manual_seed(123)  # dropout draws from the global generator in both loops
    opt = torch.optim.AdamW(ours.parameters(), lr=1e-3, weight_decay=0.01)
    trainer = Trainer(ours, CrossEntropy(), opt, epochs=epochs, device=CPU, clip_norm=1.0)
    trainer.fit(InMemoryBatches(X, y, batch, seed=seed), InMemoryBatches(X[:50], y[:50], batch, shuffle=False))

    torch.manual_seed(123)
    opt = torch.optim.AdamW(hand.parameters(), lr=1e-3, weight_decay=0.01)
    for epoch in range(epochs):
        hand.train()
        perm = torch.randperm(len(X), generator=epoch_generator(seed, epoch))
        for i in range(0, len(X), batch):
            idx = perm[i : i + batch]
            loss = torch.nn.functional.cross_entropy(hand(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(hand.parameters(), 1.0)
            opt.step()

    for (name, a), b in zip(ours.state_dict().items(), hand.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs from the hand-written loop"


def _fit(epochs=30, callbacks=(), monitor=Monitor()):
    X, y = _data(seed=1)
    model = _model()
    trainer = Trainer(
        model, CrossEntropy(), torch.optim.AdamW(model.parameters(), lr=3e-2), epochs=epochs,
        device=CPU, metrics=classification_metrics, monitor=monitor, callbacks=list(callbacks),
    )
    val = InMemoryBatches(X[:60], y[:60], 64, shuffle=False)
    trainer.fit(InMemoryBatches(X[60:], y[60:], 16, seed=0), val)
    return trainer, val


def test_best_weights_are_restored_even_after_the_last_epoch():
    trainer, val = _fit(epochs=25, callbacks=[RestoreBestWeights()])
    history = trainer.state.history
    best = min(h["val_loss"] for h in history)
    assert len(history) == 25 and history[-1]["val_loss"] != best  # the last epoch was not the best
    assert trainer.evaluate(val, "val_")["val_loss"] == best
    assert trainer.state.best_epoch == 1 + min(range(25), key=lambda i: history[i]["val_loss"])


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    trainer, _ = _fit(epochs=200, callbacks=[EarlyStopping(patience=3)])
    state = trainer.state
    assert state.should_stop and state.epoch < 200
    assert state.epoch - state.best_epoch == 3
    assert "did not improve for 3 epochs" in state.stop_reason


def test_monitor_follows_a_metric_to_maximise():
    trainer, _ = _fit(epochs=8, monitor=Monitor("val_accuracy", "max"))
    accs = [h["val_accuracy"] for h in trainer.state.history]
    assert trainer.state.best_score == max(accs)


def test_history_rows_hold_the_timings_and_lr():
    trainer, _ = _fit(epochs=3)
    row = trainer.state.history[-1]
    assert set(row) >= {"epoch", "train_loss", "val_loss", "val_accuracy", "val_f1_macro", "lr",
                        "train_seconds", "epoch_seconds"}
    assert 0 < row["train_seconds"] <= row["epoch_seconds"]


def test_last_batch_of_one_is_left_out_so_batchnorm_never_sees_a_single_sample():
    X, y = _data(n=33)
    batches = InMemoryBatches(X, y, 16, seed=0)
    sizes = [len(xb) for xb, _ in batches.epoch(0)]
    assert sizes == [16, 16] and len(batches) == 2


def test_resumed_epoch_skips_the_batches_already_done():
    X, y = _data(n=100)
    batches = InMemoryBatches(X, y, 16, seed=3)
    full = list(batches.epoch(5))
    rest = list(batches.epoch(5, start=2))
    assert len(rest) == len(full) - 2
    assert all(torch.equal(a[0], b[0]) for a, b in zip(full[2:], rest))


@pytest.mark.parametrize("epoch", [0, 1])
def test_epoch_order_depends_only_on_seed_and_epoch(epoch):
    X, y = _data(n=50)
    a = InMemoryBatches(X, y, 8, seed=1).order(epoch)
    b = InMemoryBatches(copy.deepcopy(X), y, 8, seed=1).order(epoch)
    assert torch.equal(a, b) and not torch.equal(a, InMemoryBatches(X, y, 8, seed=2).order(epoch))
