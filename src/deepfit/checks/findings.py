"""A finding of `deepfit check`: what was checked, how bad it is, where, the number behind it, and
what to do about it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

SEVERITIES = ("error", "warning", "info")  # most severe first


@dataclass(frozen=True)
class Finding:
    """One result of a check.

    check     short name of the check, e.g. "target_leak", "gradient_flow"
    severity  "error" (training would mislead or fail), "warning" (likely to hurt), "info"
    message   what was found, in a sentence
    subject   the column(s), layer(s) or rows concerned ("" when the whole dataset or model)
    evidence  the number behind the finding (a score, a count, a ratio); None when there is none
    fix       what to do about it ("" when nothing needs doing)
    """

    check: str
    severity: str
    message: str
    subject: str = ""
    evidence: float | None = None
    fix: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {self.severity!r}")
        if self.evidence is not None:  # a plain float, whatever number type it came as
            object.__setattr__(self, "evidence", float(self.evidence))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values: a non-finite evidence becomes None (the message keeps it)."""
        d = asdict(self)
        if d["evidence"] is not None and not math.isfinite(d["evidence"]):
            d["evidence"] = None
        return d


def by_severity(findings: list[Finding]) -> list[Finding]:
    """Errors first, then warnings, then infos; the order of the checks within each."""
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def from_notes(decisions: list[str], warnings: list[str], check: str = "reading") -> list[Finding]:
    """Notes as findings: each automatic decision (a delimiter detected, decimal commas read, names
    stripped, the task inferred, a column's encoding …) as an info, each warning as a warning, so
    that `deepfit check` shows how `train` would read the data, whatever made the note."""
    return ([Finding(check, "info", message) for message in decisions]
            + [Finding(check, "warning", message) for message in warnings])


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


def names(items: list[str], limit: int = 6) -> str:
    """A short list of names for a subject: 'a, b, c, … (12 in all)'."""
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "")
