"""Gradient health: per-layer gradient norms each epoch, the vanishing-gradient warning on a
50-layer plain MLP, and a 50-block residual MLP that trains where the plain one cannot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import deepfit
from deepfit.models import InputSpec, OutputSpec, create
from deepfit.training.callbacks.gradient_health import GradientHealth, layer_groups

DEEP = {"depth": 50, "width": 32, "dropout": 0.0}
FAST = {"epochs": 5, "patience": 5, "progress": False, "report": False, "checkpoint": False}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 8))
    label = (X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2]) + X[:, 3] > 0).astype(int)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).assign(label=label)


@pytest.fixture(scope="module")
def deep_runs(table, tmp_path_factory):
    out = tmp_path_factory.mktemp("deep")
    plain = deepfit.train(table, target="label", model="mlp", norm="none", out=out / "plain", **DEEP, **FAST)
    residual = deepfit.train(table, target="label", model="resmlp", out=out / "res", **DEEP, **FAST)
    return plain, residual


def test_a_50_layer_plain_mlp_trips_the_vanishing_gradient_warning(deep_runs):
    plain, _ = deep_runs
    warnings = [w for w in plain.config["warnings"] if w.startswith("vanishing gradients")]
    assert len(warnings) == 1 and "resmlp" in warnings[0]
    assert all(h["grad_norm_ratio"] < 1e-3 for h in plain.history)


def test_a_50_block_resmlp_trains_where_the_plain_mlp_cannot(deep_runs):
    plain, residual = deep_runs
    assert not any(w.startswith("vanishing gradients") for w in residual.config["warnings"])
    plain_best = min(h["val_loss"] for h in plain.history)
    residual_best = min(h["val_loss"] for h in residual.history)
    assert len(plain.history) == len(residual.history) == FAST["epochs"]
    assert residual_best < plain_best - 0.1, (residual_best, plain_best)
    assert residual.metrics["accuracy"] > plain.metrics["accuracy"]


def test_gradient_norms_are_in_the_history_and_the_run_directory(deep_runs):
    plain, residual = deep_runs
    history = pd.read_csv(plain.path / "history.csv")
    assert {"grad_norm_first", "grad_norm_last", "grad_norm_ratio"} <= set(history.columns)
    assert list(history.columns)[-3:] == ["lr", "train_seconds", "epoch_seconds"]
    np.testing.assert_allclose(history["grad_norm_ratio"],
                               history["grad_norm_first"] / history["grad_norm_last"], rtol=1e-6)
    gradients = pd.read_csv(plain.path / "gradients.csv")
    # the epoch, then 50 hidden Linear layers and the head, in forward order
    assert list(gradients.columns) == ["epoch", *(f"features.{3 * i}" for i in range(50)), "head"]
    assert len(gradients) == FAST["epochs"]
    np.testing.assert_allclose(gradients["features.0"], history["grad_norm_first"], rtol=1e-6)
    residual_gradients = pd.read_csv(residual.path / "gradients.csv")
    assert residual_gradients.columns[1] == "stem" and residual_gradients.columns[-1] == "head"


def test_norms_match_the_gradients_left_by_the_last_step():
    torch.manual_seed(0)
    model = create("mlp", InputSpec(6, 6), OutputSpec("classification", 3), hidden=(8, 8))
    torch.nn.functional.cross_entropy(model(torch.randn(16, 6)), torch.arange(16) % 3).backward()
    health = GradientHealth()
    health.groups = layer_groups(model)
    norms = health.norms()
    assert list(norms) == ["features.0", "features.4", "head"]  # BatchNorm left out
    first = model.features[0]
    expected = torch.cat([first.weight.grad.flatten(), first.bias.grad.flatten()]).norm().item()
    assert norms["features.0"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name,expected", [
    ("gru", ["features.l0", "features.l1", "head"]),
    ("transformer", ["embed", "features.layers.0.self_attn", "features.layers.0.self_attn.out_proj",
                     "features.layers.0.linear1", "features.layers.0.linear2"]),
])
def test_layer_groups_of_sequence_models(name, expected):
    spec = InputSpec(2, 2, modality="sequence", shape=(10, 2))
    model = create(name, spec, OutputSpec("regression", 1), depth=2)
    names = [n for n, _ in layer_groups(model)]
    assert names[: len(expected)] == expected
    assert names[-1] == "head"


def test_residual_models_say_so():
    spec = InputSpec(2, 2, modality="sequence", shape=(10, 2))
    out = OutputSpec("classification", 2)
    assert create("resmlp", InputSpec(4, 4), out).has_skip_connections
    assert create("cnn1d", spec, out).has_skip_connections
    assert create("transformer", spec, out).has_skip_connections
    assert not getattr(create("mlp", InputSpec(4, 4), out), "has_skip_connections", False)
    assert not create("gru", spec, out).has_skip_connections


# ------------------------------------------------------------- dead units are not vanishing gradients
def _health_state(first: list[float], train: list[float], val: list[float], lr: float,
                  ratio: list[float] | None = None):
    from deepfit.training.state import TrainState

    state = TrainState()
    ratio = ratio or [f / 0.2 for f in first]
    state.history = [{"epoch": i + 1, "train_loss": t, "val_loss": v, "grad_norm_first": f,
                      "grad_norm_last": 0.2, "grad_norm_ratio": r, "lr": lr}
                     for i, (f, t, v, r) in enumerate(zip(first, train, val, ratio, strict=True))]
    return state


def test_a_gradient_of_exactly_zero_after_a_diverged_lr_is_dead_units_not_depth():
    """`deepfit train digits --lr 5`: features.0's gradient 0 from epoch 1, the loss at ln 10."""
    health = GradientHealth()
    health.plain, health.reference = True, 2.319
    state = _health_state([0.0] * 3, [42.3, 4.2, 2.4], [5.9, 2.65, 2.35], lr=5.0)
    said = health._dead(state, {"features.0": 0.0, "features.4": 0.0, "features.8": 0.0,
                                "head": 0.2})
    assert said.startswith("no gradient reaches features.8 or the layers below it")
    assert "exactly 0 in epochs 1–3" in said and "learning rate" in said and "10x lower" in said
    assert "reached 5" in said and "42.3" in said and "resmlp" not in said
    # the gradient collapsing to almost 0 after a healthy first epoch, the loss at the prior's
    state = _health_state([0.07, 1e-9, 1e-9, 1e-9], [16.8, 3.5, 2.5, 2.6], [6.4, 2.45, 2.48, 2.47],
                          lr=3.0)
    assert health._dead(state, {"features.0": 1e-9, "head": 0.2}).startswith(
        "the first layer's gradient (features.0) collapsed")


def test_a_deep_plain_model_small_from_the_start_is_still_vanishing_gradients():
    health = GradientHealth()
    health.plain, health.reference = True, 0.6931
    # the 50-layer plain MLP: 1e-21 of the last layer's from epoch 1, the loss at ln 2, lr 1e-3
    state = _health_state([2e-22, 5e-22, 2e-21], [0.703, 0.700, 0.698], [0.700, 0.698, 0.696],
                          lr=1e-3)
    assert health._dead(state, {"features.0": 2e-21, "head": 0.2}) is None
    assert health._vanishing(state)


def test_a_diverged_run_warns_of_dead_units_and_the_lr_not_of_depth(tmp_path):
    run = deepfit.train("digits", lr=5.0, epochs=12, progress=False, report=False,
                        checkpoint=False, out=tmp_path / "r")
    said = {w.split(":")[0]: w for w in run.config["warnings"]}
    assert "vanishing gradients" not in said and "dead units" in said
    assert "learning rate" in said["dead units"] and "resmlp" not in said["dead units"]
