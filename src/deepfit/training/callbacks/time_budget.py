"""Stop when the run's wall-clock training budget (`max_seconds`) is spent.

Checked after every step (a clock read, no host sync), so a long epoch cannot overrun the
budget by more than one step and one validation pass (counted at the next step). The partial epoch is still validated
and the best weights are restored as usual. The seconds spent are part of the callback's
state, so a resumed run spends what is left of the budget, not a fresh one.
"""

from __future__ import annotations

import time

from deepfit.training.callbacks.base import Callback


class TimeBudget(Callback):
    batch_hooks = True

    def __init__(self, max_seconds: float, clock=time.perf_counter) -> None:
        self.max_seconds = float(max_seconds)
        self.clock = clock
        self.spent_before = 0.0  # seconds spent by earlier sessions of a resumed run
        self.started: float | None = None

    def spent(self) -> float:
        running = self.clock() - self.started if self.started is not None else 0.0
        return self.spent_before + running

    def on_fit_start(self, trainer, state) -> None:
        self.started = self.clock()

    def on_batch_end(self, trainer, state) -> None:
        if not state.should_stop and self.spent() >= self.max_seconds:
            state.should_stop = True
            state.stop_reason = (f"time budget: {self.max_seconds:.3g} s of wall-clock time spent, "
                                 "steps and validation passes together "
                                 f"(epoch {state.epoch + 1}, step {state.step})")

    def state_dict(self) -> dict:
        return {"spent": self.spent()}

    def load_state_dict(self, d: dict) -> None:
        self.spent_before = float(d.get("spent", 0.0))
