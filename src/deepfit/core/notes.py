"""Every automatic decision and warning of a run, logged as it happens and saved with the run."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger("deepfit")


@dataclass
class Notes:
    """Decisions and warnings. With `live=False` they are kept back until `go_live()`, so that a
    run that stops on bad input prints its error alone, not the decisions made before it."""

    decisions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)  # from deepfit.checks, as dicts
    live: bool = True
    _pending: list[tuple[int, str]] = field(default_factory=list, repr=False)

    def decide(self, message: str) -> None:
        self.decisions.append(message)
        self._log(logging.INFO, message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self._log(logging.WARNING, message)

    def go_live(self) -> None:
        self.live = True
        for level, message in self._pending:
            logger.log(level, message)
        self._pending.clear()

    def _log(self, level: int, message: str) -> None:
        if self.live:
            logger.log(level, message)
        else:
            self._pending.append((level, message))

    def copy(self) -> Notes:
        """An independent copy (still held back if this one is): one run's notes, started from
        the decisions of preparing its data (runs/train.py: train_prepared)."""
        return Notes(list(self.decisions), list(self.warnings), list(self.findings), self.live,
                     list(self._pending))

    def to_dict(self) -> dict[str, list]:
        return {"decisions": list(self.decisions), "warnings": list(self.warnings),
                "findings": list(self.findings)}
