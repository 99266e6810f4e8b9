"""The LR range test (training/lr_range.py, tools/lr_find.py) and `train --lr auto`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import deepfit
from deepfit.data.batches import make_batches
from deepfit.errors import SettingsError
from deepfit.training.lr_range import range_test, suggest, weights_digest
from deepfit.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def _linear_problem():
    """A linear regression with unit-scale features: AdamW learns it well for lr in [1e-3, 1e-1]."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(512, 8, generator=g)
    y = (X @ torch.randn(8, 1, generator=g)).squeeze(1) + 0.1 * torch.randn(512, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1), nn.Flatten(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    trainer = Trainer(model, nn.MSELoss(), optimizer, epochs=1, device=torch.device("cpu"))
    batches = make_batches(X, y, 32, loader="memory", shuffle=True, seed=0, device=torch.device("cpu"))
    return trainer, batches


def test_the_suggestion_is_inside_the_known_good_range_and_the_weights_are_untouched():
    trainer, batches = _linear_problem()
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    opt_before = json.dumps(trainer.optimizer.state_dict()["param_groups"])
    result = range_test(trainer, batches, start=1e-6, end=10.0, steps=100)
    assert 1e-3 <= result["suggestion"] <= 1e-1, result["suggestion"]
    assert result["suggestion"] <= result["lr_min"] / 10 + 1e-12
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # bitwise
    assert json.dumps(trainer.optimizer.state_dict()["param_groups"]) == opt_before
    assert not trainer.optimizer.state  # the trainer's optimizer took no step
    # it stopped at the divergence (4x the smoothed minimum), LRs exponential
    assert "passed 4" in result["stopped"] and len(result["lrs"]) <= 100
    ratios = np.diff(np.log(result["lrs"]))
    assert np.allclose(ratios, ratios[0])


def test_the_digest_catches_a_planted_change_of_one_weight():
    trainer, _ = _linear_problem()
    digest = weights_digest(trainer.model)
    with torch.no_grad():
        trainer.model[0].weight[0, 0] += 1e-7
    assert weights_digest(trainer.model) != digest


def test_the_rule_on_a_curve_of_known_shape():
    lrs = list(np.logspace(-6, 0, 61))
    x = np.log10(lrs)
    smoothed = list(1.0 - 0.5 * np.tanh(2 * (x + 3)) + np.where(x > -1, 5 * (x + 1) ** 2, 0))
    found = suggest(lrs, smoothed)  # steepest at 1e-3; the minimum near 1e-1
    assert found["lr_steep"] == pytest.approx(1e-3, rel=0.3)
    assert found["suggestion"] == min(found["lr_steep"], found["lr_min"] / 10)


def test_a_bad_range_is_a_settings_error(tmp_path, monkeypatch):
    trainer, batches = _linear_problem()
    with pytest.raises(SettingsError, match="0 < start < end"):
        range_test(trainer, batches, start=1.0, end=1e-3)
    # lr-find says so before it reads the data, and leaves no folder behind
    import deepfit.tools.lr_find as tool

    monkeypatch.setattr(tool, "prepare_config", lambda *a: pytest.fail("the data was read"))
    for bad in ({"start": 10.0, "end": 1.0}, {"start": 0.0}, {"steps": 1}):
        with pytest.raises(SettingsError, match="0 < start < end and at least 2 steps"):
            deepfit.lr_find("iris", out=tmp_path / "lr", **bad)
    assert not (tmp_path / "lr").exists()


def test_lr_find_writes_json_and_plot_and_train_lr_auto_uses_its_suggestion(tmp_path):
    found = deepfit.lr_find("breast_cancer", out=tmp_path / "lr", steps=60)
    assert json.loads((tmp_path / "lr" / "lr_find.json").read_text())["suggestion"] == found["suggestion"]
    assert (tmp_path / "lr" / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    assert 1e-4 <= found["suggestion"] <= 1e-1 and math.isfinite(found["suggestion"])
    run = deepfit.train("breast_cancer", lr="auto", epochs=2, out=tmp_path / "run", progress=False,
                        report=False)
    again = deepfit.lr_find("breast_cancer", out=tmp_path / "lr2")  # the same default 100 steps
    assert run.config["train"]["lr"] == again["suggestion"]
    assert any("found by the LR range test" in d for d in run.config["decisions"])
    assert run.history[0]["lr"] == pytest.approx(again["suggestion"])
