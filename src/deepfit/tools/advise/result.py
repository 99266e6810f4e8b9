"""What `deepfit advise` returns: the verdict, the checklist and the evidence behind them, as
plain data (advice.py makes it, report.py writes it, the CLI prints it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Item:
    criterion: str
    passed: bool
    evidence: str


@dataclass
class Advice:
    """The advice and everything behind it (plain data; the CLI only prints it)."""

    verdict: str
    rule_verdict: str
    matrix_row: str
    reasons: list[str]
    checklist: list[Item]
    bakeoff: list[dict[str, Any]]  # model, fraction, train_rows, test_score, val_score, …
    metric: str
    task: str
    modality: str
    rows: int  # labelled rows
    device: str
    estimated_seconds: float | None
    next_command: str
    path: Path
    evidence: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # how the bake-off scored (ranking_metric)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        return d
