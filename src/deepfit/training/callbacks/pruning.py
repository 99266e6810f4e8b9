"""Report the monitored validation metric to an Optuna trial each epoch and stop the run when
its pruner says so (Optuna's `trial.report` / `trial.should_prune`; deepfit tune).

The metric is read from the epoch's logs, already a Python float (the validation pass syncs once
per epoch anyway): no per-step work and no host sync is added. A pruned run stops like an early
stop (best weights restored, the run directory saved); `pruned` tells the tuner to raise
`optuna.TrialPruned` once the run is cleaned up and saved.
"""

from __future__ import annotations

import math
from typing import Any

from deepfit.training.callbacks.base import Callback


class Pruning(Callback):
    def __init__(self, trial: Any, metric: str) -> None:
        self.trial = trial  # an optuna.trial.Trial (duck-typed: report, should_prune)
        self.metric = metric
        self.pruned = False

    def on_epoch_end(self, trainer, state, logs) -> None:
        value = logs.get(self.metric)
        if value is None or not math.isfinite(value):
            return
        self.trial.report(float(value), state.epoch)
        if not state.should_stop and self.trial.should_prune():
            self.pruned = True
            state.should_stop = True
            state.stop_reason = (f"pruned by the tuner at epoch {state.epoch} "
                                 f"({self.metric} = {value:.4g})")
