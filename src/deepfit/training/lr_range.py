"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural
Networks", §3.3; fastai's `lr_find`): train from a copy of the initial weights for up to `steps`
mini-batches while the LR grows exponentially from `start` to `end`, record the loss smoothed
exponentially (beta 0.98, bias-corrected), stop once it passes 4× its minimum.

Suggestion: the LR where the smoothed loss falls fastest (the most negative slope against
log LR, before its minimum, after the first 10 points), bounded above by the LR at the minimum / 10 — the lower of the two.
"""

from __future__ import annotations

import copy
import hashlib
import math
from typing import Any

import numpy as np
import torch

from deepfit.errors import SettingsError

BETA, DIVERGE, SKIP_START = 0.98, 4.0, 10  # fastai skips the first 10 points too
RULE = ("suggested LR = the LR at the steepest descent of the smoothed loss (beta 0.98), "
        "bounded by the LR at its minimum / 10")


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer's bytes, to tell that weights are bitwise the same."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                 if tensor.numel() else b"")
    return h.hexdigest()


def check_range(start: float, end: float, steps: int) -> None:
    """SettingsError unless 0 < start < end and steps >= 2 (checked before any data is read)."""
    if not (0 < start < end) or steps < 2:
        raise SettingsError(f"the LR range needs 0 < start < end and at least 2 steps, not "
                            f"{start}, {end}, {steps}")


def range_test(trainer: Any, train: Any, *, start: float = 1e-7, end: float = 10.0,
               steps: int = 100) -> dict[str, Any]:
    """Run the range test with `trainer`'s pieces (its `step`: forward, loss, backward, clip,
    optimizer) on a deep copy of its model and optimizer, over `train`'s batches (epochs
    repeated as needed). The trainer's model and optimizer are left bitwise as they were.
    → {"lrs", "losses" (raw), "smoothed", "suggestion", "lr_min", "lr_steep", "rule", "stopped"}.
    Reads each step's loss on the host (the test is not the training loop)."""
    check_range(start, end, steps)
    before = weights_digest(trainer.model)
    probe = copy.copy(trainer)  # the same loss, precision, clipping and augmentation …
    probe.model = copy.deepcopy(trainer.model)  # … on copies of the weights and the optimizer
    probe.forward = probe.model
    probe.optimizer = _copy_optimizer(trainer.optimizer, trainer.model, probe.model)
    probe._params = [p for p in probe.model.parameters() if p.requires_grad]
    probe.scheduler, probe.scheduler_interval = None, "none"
    base = [g["lr"] for g in probe.optimizer.param_groups]
    ratios = [lr / base[0] for lr in base]  # discriminative LRs keep their ratios
    lrs, losses, smoothed = [], [], []
    avg, best, stopped = 0.0, math.inf, "reached the end of the range"
    probe.model.train()
    epoch = 0
    while len(lrs) < steps:
        for xb, yb in train.epoch(epoch):
            lr = start * (end / start) ** (len(lrs) / (steps - 1))
            for group, ratio in zip(probe.optimizer.param_groups, ratios):
                group["lr"] = lr * ratio
            loss = float(probe.step(xb, yb))
            avg = BETA * avg + (1 - BETA) * loss
            value = avg / (1 - BETA ** (len(lrs) + 1))  # bias correction
            lrs.append(lr)
            losses.append(loss)
            smoothed.append(value)
            if not math.isfinite(value) or (len(lrs) > 1 and value > DIVERGE * best):
                stopped = f"the smoothed loss passed {DIVERGE:g}× its minimum"
                break
            best = min(best, value)
            if len(lrs) >= steps:
                break
        else:
            epoch += 1
            continue
        break
    assert weights_digest(trainer.model) == before, "the range test changed the model's weights"
    return {**suggest(lrs, smoothed), "lrs": lrs, "losses": losses, "smoothed": smoothed,
            "rule": RULE, "stopped": stopped, "start": start, "end": end, "steps": steps}


def suggest(lrs: list[float], smoothed: list[float]) -> dict[str, float]:
    """{"suggestion", "lr_min", "lr_steep"} from the smoothed curve (the rule in RULE)."""
    values = np.array([v if math.isfinite(v) else np.inf for v in smoothed])
    i_min = int(np.argmin(values))
    lr_min = float(lrs[i_min])
    skip = min(SKIP_START, max(0, i_min - 2))  # the first points: the average is still settling
    if i_min - skip >= 2:
        slope = np.gradient(values[skip: i_min + 1], np.log(np.array(lrs[skip: i_min + 1])))
        lr_steep = float(lrs[skip + int(np.argmin(slope))])
    else:
        lr_steep = lr_min
    return {"suggestion": min(lr_steep, lr_min / 10), "lr_min": lr_min, "lr_steep": lr_steep}


def _copy_optimizer(optimizer: torch.optim.Optimizer, model: torch.nn.Module,
                    clone: torch.nn.Module) -> torch.optim.Optimizer:
    """A fresh optimizer of the same kind and groups over `clone`'s parameters."""
    mapping = {id(p): q for p, q in zip(model.parameters(), clone.parameters())}
    groups = [{**{k: v for k, v in g.items() if k != "params"},
               "params": [mapping[id(p)] for p in g["params"]]} for g in optimizer.param_groups]
    return type(optimizer)(groups)  # every option is in each group
