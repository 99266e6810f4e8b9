"""TimeBudget (training/callbacks/time_budget.py): stops on the clock, mid-epoch too, keeps the best
weights, and a resumed run spends only what is left of the budget."""

from __future__ import annotations

import itertools

import torch

import deepfit
from deepfit.data.batches import InMemoryBatches
from deepfit.models import InputSpec, OutputSpec, create
from deepfit.training.callbacks import RestoreBestWeights, TimeBudget
from deepfit.training.losses import CrossEntropy
from deepfit.training.trainer import Trainer

CPU = torch.device("cpu")


def _trainer(budget: TimeBudget, epochs: int = 50) -> tuple[Trainer, InMemoryBatches, InMemoryBatches]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 6, generator=g)
    y = (X[:, 0] > 0).long()
    torch.manual_seed(0)
    model = create("mlp", InputSpec(6, 6), OutputSpec("classification", 2), hidden=(8,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    trainer = Trainer(model, CrossEntropy(), opt, epochs=epochs, device=CPU,
                      callbacks=[RestoreBestWeights(), budget])
    return trainer, InMemoryBatches(X, y, 20, seed=0), InMemoryBatches(X[:50], y[:50], 50, shuffle=False)


def _fake_clock():
    ticks = itertools.count()  # one second per reading
    return lambda: float(next(ticks))


def test_the_budget_stops_mid_epoch_and_says_why():
    trainer, train, val = _trainer(TimeBudget(25, clock=_fake_clock()))
    state = trainer.fit(train, val)
    assert state.should_stop and state.stop_reason.startswith("time budget: 25 s")
    # 10 steps per epoch, one clock reading per step: the 25th second falls in epoch 3
    assert state.epoch == 3 and state.step == 25
    assert state.best_epoch >= 1


def test_a_resumed_run_spends_only_what_is_left():
    budget = TimeBudget(25, clock=_fake_clock())
    budget.load_state_dict({"spent": 20.0})  # as a checkpoint of an earlier session holds it
    trainer, train, val = _trainer(budget)
    state = trainer.fit(train, val)
    assert state.step == 5
    assert budget.state_dict()["spent"] >= 25


def test_no_budget_no_stop():
    trainer, train, val = _trainer(TimeBudget(10_000, clock=_fake_clock()), epochs=3)
    state = trainer.fit(train, val)
    assert not state.should_stop and state.epoch == 3


def test_max_seconds_through_train_keeps_the_best_weights(tmp_path):
    run = deepfit.train("iris", out=tmp_path / "run", epochs=10_000, patience=10_000, progress=False,
                        max_seconds=0.5)
    assert run.config["train"]["stop_reason"].startswith("time budget")
    assert run.config["train"]["max_seconds"] == 0.5
    assert 1 <= run.config["train"]["best_epoch"] <= run.config["train"]["epochs_run"]
    assert run.config["train"]["epochs_run"] < 10_000
    assert deepfit.load(run.path).predict([[5.1, 3.5, 1.4, 0.2]]).shape == (1,)
