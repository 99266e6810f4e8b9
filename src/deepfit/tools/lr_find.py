"""`deepfit lr-find`: the learning-rate range test (Smith 2017; fastai's `lr_find`) on a source,
with the model and training settings a `deepfit train` of the same flags would use.

    OUT/lr_find.json   the LRs, raw and smoothed losses, the suggestion and its rule
    OUT/lr_find.png    smoothed loss against LR (log axis), the suggestion marked, the rule beside it

The run's weights are never touched: the test trains a copy (training/lr_range.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepfit.config import split_settings
from deepfit.core.io import atomic_write_bytes, default_run_dir, new_run_dir, write_json
from deepfit.core.notes import Notes
from deepfit.data.dataset import source_name
from deepfit.lifecycle.lr_auto import find_lr
from deepfit.lifecycle.prepare import choose_model, prepare_config
from deepfit.lifecycle.train import resolve_device
from deepfit.models import resolve_settings
from deepfit.training.lr_range import check_range


def lr_find(source: Any = None, y: Any = None, *, start: float = 1e-7, end: float = 10.0,
            steps: int = 100, out: str | Path | None = None, **settings: Any) -> dict[str, Any]:
    """Run the LR range test on `source` (as `deepfit.train` reads it, with its data, model and
    training settings) and write OUT/lr_find.json and OUT/lr_find.png. LRs are in the optimizer's
    units (AdamW's step size); `steps` mini-batches at most. → plain data: {"suggestion",
    "lr_min", "lr_steep", "rule", "lrs", "losses", "smoothed", "stopped", "json", "plot", …}.
    Raises SettingsError for a bad range or settings, before anything is written."""
    check_range(start, end, steps)  # before the data is read
    settings = {k: v for k, v in settings.items() if v is not None}
    if settings.get("lr") == "auto":
        settings.pop("lr")
    cfg = split_settings(settings)
    notes = Notes(live=False)
    prepared = prepare_config(source, y, cfg, notes)
    cfg = choose_model(cfg, prepared.data, notes)
    model_settings = resolve_settings(cfg.model.name, cfg.model.settings)
    device = resolve_device(cfg.train.device)
    path = Path(out) if out else default_run_dir(f"lr-find-{source_name(source)}")
    with new_run_dir(path):
        result = find_lr(prepared, cfg, model_settings, device, start=start, end=end, steps=steps)
        result["json"], result["plot"] = str(path / "lr_find.json"), str(path / "lr_find.png")
        atomic_write_bytes(path / "lr_find.png", plot_bytes(result))
        write_json(path / "lr_find.json", result)
    return result


def plot_bytes(result: dict[str, Any]) -> bytes:
    """PNG: the raw and smoothed loss against LR on a log axis, the suggestion marked and the
    rule written beside it."""
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), dpi=90)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.22, top=0.9)
    ax = fig.add_subplot()
    ax.plot(result["lrs"], result["losses"], color="lightgrey", linewidth=1, label="loss per batch")
    ax.plot(result["lrs"], result["smoothed"], label="smoothed loss")
    ax.axvline(result["suggestion"], color="tab:red", linestyle="--",
               label=f"suggested LR {result['suggestion']:.3g}")
    ax.axvline(result["lr_min"], color="grey", linestyle=":", label=f"minimum at {result['lr_min']:.3g}")
    ax.set_xscale("log")
    finite = [v for v in result["smoothed"] if v == v and abs(v) != float("inf")]
    if finite:
        low, high = min(finite), max(finite[0], min(max(finite), 4 * min(finite)))
        ax.set_ylim(low - 0.05 * (high - low + 1e-12), high + 0.1 * (high - low + 1e-12))
    ax.set(xlabel="learning rate (log scale)", ylabel="training loss",
           title=f"LR range test: {result['model']}, batch size {result['batch_size']}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.text(0.02, 0.03, result["rule"] + f"; {result['stopped']}", fontsize=7, wrap=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
