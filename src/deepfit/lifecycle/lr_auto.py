"""The LR range test on a prepared split (training/lr_range.py), with the pieces a run would
train with: the same model built from the seed, its optimizer, loss, clipping, precision and
training batches. Used by `deepfit lr-find` (tools/lr_find.py) and `deepfit train --lr auto`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from deepfit.checks.before_training import has_batchnorm
from deepfit.config import RunConfig
from deepfit.core.notes import Notes
from deepfit.lifecycle.batches import run_batches
from deepfit.lifecycle.prepare import Prepared
from deepfit.models.transfer import build_model
from deepfit.training import imbalance as imb
from deepfit.training.lr_range import RULE, range_test
from deepfit.training.optim import create_optimizer
from deepfit.training.state import seed_everything
from deepfit.training.trainer import Trainer


def find_lr(prepared: Prepared, cfg: RunConfig, model_settings: dict, device: torch.device, *,
            start: float = 1e-7, end: float = 10.0, steps: int = 100) -> dict[str, Any]:
    """The range test's result (training/lr_range.py: range_test) for the model `cfg` names
    (already chosen) on `prepared`'s training split; the seed's state is restored after."""
    t = cfg.train
    seed_everything(t.seed)
    input_spec, output_spec = prepared.specs()
    model = build_model(cfg.model.name, model_settings, input_spec, output_spec, t.weights,
                        Notes())[0].to(device)
    probe_cfg = dataclasses.replace(t, lr=start if t.lr == "auto" else t.lr)
    optimizer = create_optimizer(model, probe_cfg, device)
    # the run's own training batches (lifecycle/batches.py), their decisions not said twice
    train = run_batches(prepared, t, device, Notes(), drop_single=has_batchnorm(model))[0]
    trainer = Trainer(model, imb.loss_for(prepared.data.task, prepared.imbalance, t.focal_gamma),
                      optimizer, epochs=1, device=device, clip_norm=t.clip_norm,
                      precision=t.precision)
    result = range_test(trainer, train, start=start, end=end, steps=steps)
    seed_everything(t.seed)
    return result | {"model": cfg.model.name, "batch_size": t.batch_size}


def auto_lr(prepared: Prepared, cfg: RunConfig, model_settings: dict, device: torch.device,
            notes: Notes) -> RunConfig:
    """`lr="auto"`: the run's config with the range test's suggestion as its LR, said in the notes."""
    found = find_lr(prepared, cfg, model_settings, device)
    notes.decide(f"lr = {found['suggestion']:.3g}, found by the LR range test (--lr auto: "
                 f"{len(found['lrs'])} steps from {found['start']:g}; {RULE})")
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr=found["suggestion"]))
