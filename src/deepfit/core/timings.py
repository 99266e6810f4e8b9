"""Where a run's wall time goes, stage by stage: reading, audit, preprocessing, model checks,
training steps, evaluation, report, saving (`deepfit train --timings` prints it; config.json
keeps it as "timings").

    timings = Timings()
    with timings.active():            # the stages below record into it
        with stage("read"):
            ...
        with stage("steps"):
            with stage("checkpoint"): # nested: its seconds are its own, not the outer's
                ...

Times are exclusive: a stage's seconds leave out those of the stages run inside it, so the
stages and "other" (what no stage claimed) add up to the total. `stage` with no active Timings costs one perf_counter call and
records nothing, so library code can mark its stages unconditionally.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

SLOW_STAGE_S = 5.0  # a stage outside the training steps that takes longer is said in the notes
OUTSIDE_STEPS = "outside the steps"

_active: ContextVar[Timings | None] = ContextVar("deepfit_timings", default=None)


@dataclass
class Timings:
    """Seconds per stage (exclusive), in the order first seen, from the first `active()` on;
    what no stage claimed is "other"."""

    seconds: dict[str, float] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None
    _stack: list[list[float]] = field(default_factory=list, repr=False)  # [start, child seconds]

    @contextlib.contextmanager
    def active(self) -> Iterator[Timings]:
        """Make this the Timings that `stage` records into, for the block (the clock starts at
        the first activation and stops when it ends)."""
        token = _active.set(self)
        outermost = self.started is None
        if outermost:
            self.started = time.perf_counter()
        try:
            yield self
        finally:
            _active.reset(token)
            if outermost:
                self.ended = time.perf_counter()

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @property
    def total(self) -> float:
        """Wall seconds since the clock started (until it stopped, if it has)."""
        if self.started is None:
            return 0.0
        return (self.ended or time.perf_counter()) - self.started

    def outside(self, steps: str = "steps") -> float:
        """Seconds spent outside the training steps."""
        return self.total - self.seconds.get(steps, 0.0)

    def slow_stages(self, steps: str = "steps") -> list[tuple[str, float]]:
        """(stage, seconds) of the stages other than the steps that took over SLOW_STAGE_S."""
        return [(n, s) for n, s in self.seconds.items() if n != steps and s > SLOW_STAGE_S]

    def to_dict(self) -> dict[str, float]:
        """{stage: seconds, "other", "total", "outside the steps"}, rounded to 0.1 ms."""
        total = self.total
        stages = {n: round(s, 4) for n, s in self.seconds.items()}
        other = max(total - sum(self.seconds.values()), 0.0)
        return {**stages, "other": round(other, 4), "total": round(total, 4),
                OUTSIDE_STEPS: round(total - self.seconds.get("steps", 0.0), 4)}


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Record the block's seconds as stage `name` of the active Timings (exclusive of stages
    nested in it); nothing when none is active."""
    timings = _active.get()
    if timings is None:
        yield
        return
    frame = [time.perf_counter(), 0.0]
    timings._stack.append(frame)
    try:
        yield
    finally:
        timings._stack.pop()
        elapsed = time.perf_counter() - frame[0]
        timings.add(name, elapsed - frame[1])
        if timings._stack:
            timings._stack[-1][1] += elapsed


def current() -> Timings | None:
    """The active Timings, if any."""
    return _active.get()


__all__ = ["OUTSIDE_STEPS", "SLOW_STAGE_S", "Timings", "current", "stage"]
