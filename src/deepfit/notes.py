"""Every automatic decision and warning of a run, logged as it happens and saved with the run."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger("deepfit")


@dataclass
class Notes:
    decisions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def decide(self, message: str) -> None:
        self.decisions.append(message)
        logger.info(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        logger.warning(message)

    def to_dict(self) -> dict[str, list[str]]:
        return {"decisions": list(self.decisions), "warnings": list(self.warnings)}
