"""Everything a run's progress is: one serialisable place, for logs, checkpoints and resume.

`TrainState` holds the counters, the monitor's memory and the history; `capture_rng` /
`restore_rng` hold every random generator. The data order needs no state of its own: it is a
function of (seed, epoch), and `batch_in_epoch` is the position inside the epoch.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    batch_in_epoch: int = 0  # batches done in the epoch under way (0 between epochs)
    best_score: float | None = None
    best_epoch: int = 0  # 1-based epoch of best_score; 0 before any
    epochs_since_improvement: int = 0
    improved: bool = False  # the epoch just ended set a new best
    should_stop: bool = False
    stop_reason: str | None = None
    warnings: list[str] = field(default_factory=list)  # from the guards
    epoch_seconds: float = 0.0  # step time of the epoch under way before an interruption
    history: list[dict[str, float]] = field(default_factory=list)
    # per epoch, each layer group's gradient norm (callbacks/gradient_health.py; gradients.csv)
    grad_norms: list[dict[str, float]] = field(default_factory=list)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, d: dict[str, Any]) -> None:
        for key, value in d.items():
            setattr(self, key, value)


@dataclass(frozen=True)
class Monitor:
    """The quantity early stopping, best weights and the plateau schedule follow."""

    name: str = "val_loss"
    mode: str = "min"
    min_delta: float = 0.0

    def update(self, state: TrainState, logs: dict[str, float]) -> None:
        value = logs[self.name]
        best = state.best_score
        if math.isnan(value):
            improved = False
        elif best is None:
            improved = True
        elif self.mode == "min":
            improved = value < best - self.min_delta
        else:
            improved = value > best + self.min_delta
        state.improved = improved
        if improved:
            state.best_score, state.best_epoch, state.epochs_since_improvement = value, state.epoch, 0
        else:
            state.epochs_since_improvement += 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """Every generator's state: Python's and NumPy's as JSON-able values, torch's as uint8 tensors."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    states: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
