"""The held-out rows of a saved run, rebuilt from its run directory: its own test split (read
again from the source config.json names, split with the saved settings and seed exactly as
training split it, checked against the saved fingerprint of the data), or new labelled data.

    rows = held_out_rows(run_dir)             # the run's own test split
    rows = held_out_rows(run_dir, "new.csv")  # other labelled data, read as evaluate reads them

Used by `deepfit explain` (tools/explain/), which must explain the model on rows it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfit.config import split_settings
from deepfit.core.notes import Notes
from deepfit.data.split import split_data
from deepfit.errors import SettingsError
from deepfit.lifecycle.predictor import Predictor
from deepfit.lifecycle.prepare import _fingerprint, reading_settings, take
from deepfit.lifecycle.resume import run_record
from deepfit.lifecycle.seen_rows import seen_counts, warn_if_seen
from deepfit.modalities import load_source


@dataclass
class HeldOut:
    """Raw samples X (a DataFrame, an array [N, ...] or streamed files) and their targets y (a
    pandas Series, or a DataFrame of several steps), with where they come from, in words."""

    X: Any
    y: Any
    where: str


def held_out_rows(run_dir: str | Path, predictor: Predictor, source: Any = None) -> HeldOut:
    """The run's own test split (`source` None), or the labelled `source`. Raises
    SettingsError when the run was trained on in-memory data and no source is given, when the
    source read again differs from the training data (its fingerprint), or when the run has no
    test split (--test-size 0 without --test)."""
    run_dir = Path(run_dir)
    record = run_record(run_dir)
    saved = record["data"]
    if source is not None:
        return _given(run_dir, predictor, source, saved)
    cfg = split_settings(dict(record["settings"]))
    source = saved["source"]
    if source is None:
        raise SettingsError(f"{run_dir} was trained on in-memory data: its test split cannot be "
                            "read again; give labelled data to explain it on (SOURCE)")
    reading = reading_settings(cfg) | {"modality": saved.get("modality")}
    notes = Notes(live=False)
    if cfg.data.test is not None:  # a held-out file was the test split
        data = load_source(cfg.data.test, target=saved["target"], task=saved["task"], notes=notes,
                           held_out=True, **reading)
        return HeldOut(data.X, data.y, f"the run's test file {cfg.data.test}")
    data = load_source(source, target=saved["target"], task=saved["task"], notes=notes, **reading)
    if _fingerprint(data) != saved["fingerprint"]:
        raise SettingsError(f"{source} differs from the data {run_dir} was trained on: its test "
                            "split cannot be rebuilt; give labelled data to explain it on (SOURCE)")
    if data.test is not None:  # the source's own test set (torchvision's)
        return HeldOut(data.test.X, data.test.y, f"the test set of {data.name}")
    splits = split_data(data, cfg.data.val_size, cfg.data.test_size, cfg.train.seed, notes)
    if not len(splits.test):
        raise SettingsError(f"{run_dir} has no test split (--test-size 0); give labelled data "
                            "to explain it on (SOURCE)")
    return HeldOut(take(data.X, splits.test), data.y.iloc[splits.test],
                   f"the run's test split ({len(splits.test):,} rows of {data.name})")


def _given(run_dir: Path, predictor: Predictor, source: Any, saved: dict) -> HeldOut:
    """Labelled data read as `deepfit evaluate` reads them, with a warning when the model saw
    some of their rows (seen_rows.py)."""
    reading = predictor.modality.held_out_reading(predictor.preprocessor)
    data = load_source(source, target=saved["target"], task=predictor.task, notes=Notes(),
                       held_out=True, window=saved.get("window"), horizon=saved.get("horizon"),
                       modality=saved.get("modality"), data_root=saved.get("data_root"), **reading)
    if not hasattr(data.X, "chunks"):
        counts = seen_counts(run_dir, predictor.features(data.X, Notes(live=False)))
        warn_if_seen(counts, len(data.X), Notes())
    return HeldOut(data.X, data.y, f"{source} ({len(data):,} rows)")
