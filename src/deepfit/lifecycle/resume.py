"""Resume a run from its last complete checkpoint, with the settings it was started with.

Settings given again must agree with the run's (those in `RESUMABLE_CHANGES` may differ: they do
not change what is computed), and the data must be the same (a fingerprint of them is saved).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepfit.config import RESUMABLE_CHANGES, split_settings
from deepfit.core.io import read_json
from deepfit.errors import RunDirError, SettingsError
from deepfit.models import resolve_settings
from deepfit.training.checkpoint import latest_checkpoint

CHECKPOINTS = "checkpoints"


def resume_settings(run_dir: Path, source: Any, given: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The source and the settings of the run in `run_dir`, checked against those given now."""
    if not run_dir.is_dir():
        raise RunDirError(f"cannot resume: no such run directory: {run_dir}")
    record = read_json(run_dir / "config.json")
    if record.get("status") == "finished":
        raise RunDirError(f"{run_dir} finished already; there is nothing to resume")
    saved = record["settings"]
    if source is None:
        source = record["data"]["source"]
        if source is None:
            raise SettingsError("this run was trained on in-memory data: pass the same data again")
    conflicts = _conflicts(saved, {k: v for k, v in given.items() if v is not None})
    if conflicts:
        raise SettingsError(f"cannot resume {run_dir} with other settings: {'; '.join(conflicts)}")
    return source, {**saved, **given}


def _conflicts(saved: dict[str, Any], given: dict[str, Any]) -> list[str]:
    before = _resolved(saved)
    after = _resolved({**saved, **given})
    return [f"{k} was {before[k]!r}, now {after[k]!r}" for k in given
            if k not in RESUMABLE_CHANGES and before.get(k) != after.get(k)]


def _resolved(flat: dict[str, Any]) -> dict[str, Any]:
    cfg = split_settings(dict(flat))
    model = resolve_settings(cfg.model.name, cfg.model.settings)
    return {**cfg.flat(), **model}


def resume_checkpoint(run_dir: Path, fingerprint: str) -> dict[str, Any]:
    record = read_json(run_dir / "config.json")
    if record["data"]["fingerprint"] != fingerprint:
        raise SettingsError(f"cannot resume {run_dir}: the data differ from those it was trained on")
    checkpoint = latest_checkpoint(run_dir / CHECKPOINTS)
    if checkpoint is None:
        raise RunDirError(f"cannot resume {run_dir}: it holds no complete checkpoint")
    return checkpoint
