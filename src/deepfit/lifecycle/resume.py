"""Resume a run from its last complete checkpoint, with the settings it was started with.

Settings given again must agree with the run's (those in `RESUMABLE_CHANGES` may differ: they do
not change what is computed), and the data must be the same (a fingerprint of them is saved).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepfit.config import RESUMABLE_CHANGES, split_settings
from deepfit.core.io import read_json, remove_temporary_files
from deepfit.core.notes import Notes
from deepfit.core.words import plural
from deepfit.errors import DeepfitError, RunDirError, SettingsError, printable
from deepfit.models import resolve_settings
from deepfit.training.checkpoint import usable_checkpoint

CHECKPOINTS = "checkpoints"


def resume_settings(run_dir: Path, source: Any, given: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The source and the settings of the run in `run_dir`, checked against those given now."""
    if not run_dir.is_dir():
        raise RunDirError(f"cannot resume: no such run directory: {run_dir}")
    record = run_record(run_dir)
    if record.get("status") == "finished":
        raise RunDirError(f"{run_dir} finished already; there is nothing to resume")
    saved = record["settings"]
    try:  # the saved settings must make a run, as settings given on the command line must
        _resolved(saved)
    except (DeepfitError, TypeError, ValueError, AttributeError, KeyError) as exc:
        raise RunDirError(f"{run_dir / 'config.json'} is damaged: its settings do not make a run "
                          f"({printable(exc)[:200]})") from None
    started = record["train"].get("threads")
    if started is not None and (isinstance(started, bool) or not isinstance(started, int) or started < 1):
        raise RunDirError(f"{run_dir / 'config.json'} is damaged: its 'train.threads' is {started!r}")
    if given.get("threads") is not None and started and int(given["threads"]) != int(started):
        raise SettingsError(
            f"cannot resume {run_dir} with --threads {given['threads']}: it was started with "
            f"{plural(started, 'thread')}, and another count splits the sums differently, so the weights "
            "would not be those of an uninterrupted run; leave --threads out")
    if source is None:
        source = record["data"]["source"]
        if source is None:
            raise SettingsError("this run was trained on in-memory data: pass the same data again")
    given = {k: v for k, v in given.items() if v is not None}
    if saved.get("task") is None and given.get("task") == record["data"].get("task"):
        del given["task"]  # the task the run inferred: the same data infer it again
    conflicts = _conflicts(saved, given)
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


# config.json's keys that resuming reads: (dotted key, type)
RECORD_KEYS = (("settings", dict), ("data", dict), ("data.fingerprint", str), ("train", dict),
               ("status", str))


def run_record(run_dir: Path) -> dict[str, Any]:
    """config.json of `run_dir`, checked to hold what resuming reads (RunDirError if not)."""
    record = read_json(run_dir / "config.json")
    if not isinstance(record, dict):
        raise RunDirError(f"{run_dir / 'config.json'} is damaged: it holds no JSON object")
    for key, kind in RECORD_KEYS:
        value: Any = record
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, kind):
            what = "is missing" if value is None else f"is a {type(value).__name__}, not a {kind.__name__}"
            raise RunDirError(f"{run_dir / 'config.json'} is damaged: its {key!r} {what}")
    if "source" not in record["data"]:
        raise RunDirError(f"{run_dir / 'config.json'} is damaged: its 'data.source' is missing")
    return record


def resume_checkpoint(run_dir: Path, fingerprint: str, device: Any, notes: Notes) -> dict[str, Any] | None:
    """The checkpoint to continue `run_dir` from, or None when the run stopped before its first
    complete checkpoint (it then trains again from the start, said in the notes). A damaged
    newer checkpoint skipped is a warning naming it and why; when every complete one is
    damaged, a RunDirError says why each failed. Resuming on another device than the run was
    started on is allowed, with a warning that the weights will not be bit-identical."""
    record = run_record(run_dir)
    if record["data"]["fingerprint"] != fingerprint:
        raise SettingsError(f"cannot resume {run_dir}: the data differ from those it was trained on")
    removed = remove_temporary_files(run_dir)  # of a final save that was interrupted
    if removed:
        notes.decide(f"removed {plural(len(removed), 'temporary file')} of an interrupted write: {', '.join(removed)}")
    checkpoint, problems = usable_checkpoint(run_dir / CHECKPOINTS)
    if checkpoint is None and problems:
        raise RunDirError(f"cannot resume {run_dir}: no checkpoint is usable: {'; '.join(problems)}")
    for problem in problems:
        notes.warn(f"skipped the damaged checkpoint {problem}; resuming from the one before it")
    if checkpoint is None:
        notes.decide(f"{run_dir} holds no complete checkpoint (the run stopped before its first): "
                     "training again from the start")
        return None
    started = record["train"].get("device")
    if started and str(device) != started:
        notes.warn(f"resumed on {device}, started on {started}: the weights will not be bit-identical "
                   "to an uninterrupted run (that holds on the same device, thread count and torch version)")
    return checkpoint
