"""How long `deepfit.benchmark` will take, and what it measures within `max_seconds`.

After a probe (two one-step training epochs, the first a warm-up, the second timed with its
validation pass, and a forward at batch 1), the benchmark knows what a training step, a validation pass and a
forward call cost here. `fit_plan` turns the requested repeats × steps into the largest plan
whose estimated time, with what was already spent (building the model, counting FLOPs, the
probe), fits `max_seconds`:

    the requested plan                      when it fits
    no warm-up repeats (the probe warmed)   else, when that fits
    repeats r ≤ R × steps s ≤ S             else the best that fits: 3 repeats (a spread) if
                                            possible, then the most timed steps in all, then
                                            more repeats
    1 repeat × 1 step                       when nothing fits; said so, and measured anyway

Defaults: 180 s on a CPU or MPS (a laptop finishes the guide's resnet50 command in minutes),
600 s on CUDA (a GPU rarely comes near it); `math.inf` for no limit.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from deepfit.errors import SettingsError
from deepfit.training.callbacks.base import Callback

DEFAULT_MAX_SECONDS = {"cpu": 180.0, "mps": 180.0, "cuda": 600.0}
SPREAD_REPEATS = 3  # the plan keeps this many repeats, if it can, before adding steps
PROBE_REPEAT = (0, 1, 1)  # warmup, repeats, steps: the probe's timed step is the one repeat


def max_seconds_for(max_seconds: float | None, device_type: str) -> float:
    """The budget in seconds: the one given, else the device's default (DEFAULT_MAX_SECONDS)."""
    if max_seconds is None:
        return DEFAULT_MAX_SECONDS.get(device_type, DEFAULT_MAX_SECONDS["cpu"])
    if not max_seconds > 0:  # NaN too
        raise SettingsError(f"max_seconds must be a positive number of seconds (inf for no limit), "
                            f"not {max_seconds}")
    return float(max_seconds)


@dataclass
class Costs:
    """Seconds measured by the probe: a training step, the validation pass after each timed
    epoch, one forward call per batch size (model alone; and a run's raw rows through its
    preprocessing and model), and the --profile-memory epoch."""

    step: float
    validation: float
    forward: dict[int, float]  # batch size → seconds per call
    predict: dict[int, float] = field(default_factory=dict)
    profile: float = 0.0

    def seconds(self, warmup: int, repeats: int, steps: int) -> float:
        """Estimated seconds of the measurements: (warmup + repeats) epochs of `steps` steps,
        each validated (none for 1 repeat × 1 step without warm-up: the probe's timed step is
        that repeat, PROBE_REPEAT), then an untimed and repeats × steps timed calls per batch
        size."""
        reused = (warmup, repeats, steps) == PROBE_REPEAT
        epochs = 0.0 if reused else (warmup + repeats) * (steps * self.step + self.validation)
        calls = (repeats * steps + 1) * (sum(self.forward.values()) + sum(self.predict.values()))
        return epochs + calls + self.profile

    def most_steps(self, repeats: int, seconds: float, limit: int) -> int:
        """The most steps (at most `limit`, maybe 0) that `repeats` repeats without warm-up fit
        in `seconds`."""
        low, high = 0, limit  # the cost rises with the steps: bisect
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if self.seconds(0, repeats, mid) <= seconds else (low, mid - 1)
        return low


@dataclass
class Plan:
    """What the benchmark set out to do and what it does (benchmark.json's "plan")."""

    title: str  # "resnet50, batch 64, cpu"
    requested: dict[str, int]  # repeats, steps, warmup as asked
    repeats: int
    steps: int
    warmup: int
    step_seconds: float  # estimated: the probe's second training step
    setup_seconds: float  # spent before the plan: model, data, FLOPs, probe
    estimated_seconds: float  # setup and the plan, in all
    requested_seconds: float  # setup and the requested plan, as estimated
    max_seconds: float | None  # None: no limit
    reduced: bool
    notes: list[str] = field(default_factory=list)
    seconds: float | None = None  # the benchmark's actual wall-clock seconds, at the end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The plan as said before the long part; the reductions after it."""
        head = (f"{self.title}: ~{human_seconds(self.step_seconds)} per "
                f"training step, {self.repeats} repeat{'s' * (self.repeats != 1)} × {self.steps} "
                f"step{'s' * (self.steps != 1)}, ~{human_seconds(self.estimated_seconds)} in all")
        return [head, *self.notes]


def fit_plan(title: str, costs: Costs, requested: dict[str, int], max_seconds: float,
             spent: float) -> Plan:
    """The largest plan within `max_seconds` (see the module's docstring); `requested` holds
    repeats, steps and warmup (other keys are ignored); `spent` seconds are already gone."""
    R, S, W = requested["repeats"], requested["steps"], requested["warmup"]
    left = max_seconds - spent
    limit = None if math.isinf(max_seconds) else max_seconds
    notes: list[str] = []
    if costs.seconds(W, R, S) <= left:
        r, s, w = R, S, W
    elif costs.seconds(0, R, S) <= left:
        r, s, w = R, S, 0
        notes.append(f"no warm-up repeats (the probe's steps warmed up) to fit --max-seconds {limit:g}")
    else:
        w = 0
        fits = [(r, s) for r in range(1, R + 1) if (s := costs.most_steps(r, left, S)) >= 1]
        r, s = max(fits, key=lambda rs: (min(rs[0], SPREAD_REPEATS), rs[0] * rs[1], rs[0]),
                   default=(1, 1))
        took = f"{r} repeat{'s' * (r != 1)} × {s} step{'s' * (s != 1)}"
        whole = human_seconds(spent + costs.seconds(W, R, S))
        if fits:
            notes.append(f"reduced from {R} repeats × {S} steps (~{whole}) to {took} to fit "
                         f"--max-seconds {limit:g} (--max-seconds inf for no limit)")
        else:
            notes.append(f"even the least plan, {took}, takes longer than --max-seconds {limit:g} "
                         f"(the requested {R} × {S}: ~{whole}); measured anyway")
    if (w, r, s) == PROBE_REPEAT:
        notes.append("1 repeat of 1 step: the probe's timed step (after its warm-up step)")
    if r == 1:
        notes.append("1 repeat: no spread to report")
    estimate = spent + costs.seconds(w, r, s)
    asked = {"repeats": R, "steps": S, "warmup": W}
    return Plan(title, asked, r, s, w, costs.step, spent, estimate,
                spent + costs.seconds(W, R, S), limit, (r, s, w) != (R, S, W), notes)


def human_seconds(seconds: float) -> str:
    """'12 ms', '3.4 s', '95 s', '15 min', '120 min'."""
    if seconds < 1:
        return f"{seconds * 1e3:.2g} ms"
    if seconds < 100:
        return f"{seconds:.2g} s"
    minutes = seconds / 60
    return f"{seconds:.0f} s" if seconds < 600 else f"{minutes:.2g} min" if minutes < 100 else \
        f"{minutes:.0f} min"


class Ticker:
    """A rich progress bar per phase (training repeats, latency calls) on stdout, or nothing.
    `enabled=None`: when stdout is a terminal (as `deepfit train`'s bar)."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stdout.isatty() if enabled is None else enabled
        self.progress: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> Ticker:
        if self.enabled:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     TimeRemainingColumn(), console=Console(file=sys.stdout))
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def phase(self, description: str, total: int) -> None:
        if self.progress is not None:
            self.task = self.progress.add_task(description, total=total)

    def tick(self) -> None:
        """One more done in the current phase (called outside the timed code)."""
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)


class EpochTicks(Callback):
    """Ticks the Ticker at each training epoch's end (no work inside the epoch)."""

    def __init__(self, ticker: Ticker) -> None:
        self.ticker = ticker

    def on_epoch_end(self, trainer: Any, state: Any, logs: dict[str, float]) -> None:
        self.ticker.tick()
