"""What can be known before the first training step, checked before it (runs/prepare.py, which
train, compare and advise all pass; `deepfit check` reports the same as findings).

    held_out_findings    a --test file that lacks feature columns the training data have, or
                         holds classes the training data never had, or values the fitted
                         preprocessing cannot encode (errors: evaluation would fail after training)
    batch_findings       a BatchNorm model with a batch of one row (error), or a last training
                         batch of one row (info: that row is left out of each epoch)

A model "has BatchNorm" when building it yields an `nn.modules.batchnorm._BatchNorm` module
(BatchNorm1d/2d/3d, SyncBatchNorm, lazy ones): found by looking, not from a list of names.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import nn

from deepfit.checks.findings import Finding
from deepfit.core.notes import Notes
from deepfit.core.words import noun_for, plural
from deepfit.data.batches import drops_last_row
from deepfit.errors import DeepfitError, SettingsError


def quoted(names: list[Any], limit: int = 8) -> str:
    """'a', ' b', … as repr shows them, so a stray space or a number-as-name is visible."""
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def held_out_findings(train: Any, test: Any, preprocessor: Any, target: Any,
                       name: str) -> list[Finding]:
    """Errors about a held-out --test file (`test`, a Dataset) read beside the training data
    (`train`, a Dataset; `preprocessor` and `target` fitted on its training split). Empty when
    the file will evaluate without a problem."""
    label = f"--test {name}"
    if isinstance(train.X, pd.DataFrame) and isinstance(test.X, pd.DataFrame):
        missing = [c for c in train.X.columns if c not in test.X.columns]
        if missing:
            return [Finding("test_file", "error",
                            f"{label} lacks {plural(len(missing), 'feature column')} the training data have: "
                            f"{quoted(missing)}", quoted(missing), float(len(missing)),
                            "give the test file the same columns as the training data "
                            "(names are compared exactly, spaces included)")]
    unseen, rows = unseen_classes(target, test.y)
    if unseen:
        return [Finding("test_file", "error",
                        f"{label} holds {plural(rows, 'row')} of {noun_for(len(unseen), 'class')} the training data never had: "
                        f"{quoted(unseen)}; a model cannot predict a class it never saw",
                        quoted(unseen), float(rows),
                        "add rows of those classes to the training data, or leave them out of "
                        "the test file")]
    try:  # what evaluating the file after training would do: tables only (images: decoding)
        if isinstance(test.X, pd.DataFrame):
            preprocessor.transform(test.X, Notes(live=False))
        target.transform(test.y)
    except DeepfitError as exc:
        return [Finding("test_file", "error", f"{label}: {exc}", "", None,
                        "make the test file's values like the training data's")]
    return []


def unseen_classes(target: Any, y: pd.Series) -> tuple[list[Any], int]:
    """The labels of `y` a fitted classification TargetEncoder does not know (matched by the
    encoder's own rule), and how many rows hold them; ([], 0) for regression."""
    if target.task != "classification" or not len(y):
        return [], 0
    values = pd.Series(pd.unique(y), dtype=object)
    if _known(target, values):
        return [], 0
    bad = [v for v in values if not _known(target, pd.Series([v], dtype=object))]
    return bad, int(y.isin(bad).sum())


def _known(target: Any, values: pd.Series) -> bool:
    try:
        target.transform(values)
    except DeepfitError:
        return False
    return True


def has_batchnorm(model: nn.Module) -> bool:
    """Whether any module of `model` is a BatchNorm (which cannot train on a batch of one row)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def build_quietly(name: str, settings: dict, input_spec: Any, output_spec: Any) -> nn.Module | None:
    """The model these settings build, without pretrained weights, leaving the global random
    state as it was (meta tensors where the model allows: no memory, no init work); None when
    it cannot be built here (the run itself will say why)."""
    from deepfit.models import create

    with torch.random.fork_rng(devices=[]):
        for device in ("meta", "cpu"):
            try:
                with torch.device(device):
                    return create(name, input_spec, output_spec, **settings)
            except Exception:  # the run builds it again and names what is wrong
                continue
    return None


def batch_findings(model: nn.Module, name: str, settings: dict, batch_size: int,
                   n_train: int) -> list[Finding]:
    """A BatchNorm model (`model`, named `name`, built from `settings`) trained with
    `batch_size` on `n_train` rows: an error for batches of one row, an info for a last batch
    of one row (left out of each epoch); nothing without BatchNorm."""
    if not has_batchnorm(model):
        return []
    if batch_size == 1 or n_train == 1:
        fix = "use --batch-size 2 or more" + (", or --set norm=none (no BatchNorm)"
                                              if "norm" in settings else "")
        return [Finding("batch_size", "error",
                        f"{name} has BatchNorm layers, which cannot train on a batch of one row "
                        f"(batch size {batch_size}, {n_train} training rows)", name,
                        float(batch_size), fix)]
    if drops_last_row(n_train, batch_size):
        return [Finding("batch_size", "info", drop_note(n_train, batch_size), name, 1.0, "")]
    return []


def check_batch_size(prepared: Any, cfg: Any, models: dict[str, dict]) -> None:
    """SettingsError for a batch of one row with a BatchNorm model, before training: each of
    `models` (name → settings) is built (on the meta device) only when a batch could be one
    row (`prepared`: runs/prepare.py's Prepared)."""
    from deepfit.models import resolve_settings

    n_train, batch = prepared.sizes["train"], cfg.train.batch_size
    if batch != 1 and n_train != 1:
        return
    for name, settings in models.items():
        resolved = resolve_settings(name, settings)
        model = build_quietly(name, resolved, *prepared.specs())
        if model is not None:
            raise_errors(batch_findings(model, name, resolved, batch, n_train), SettingsError)


def drop_note(n_train: int, batch_size: int) -> str:
    """The note of a last training batch of one row, left out (data/batches.py, drop_single)."""
    return (f"{n_train} training rows in batches of {batch_size} leave a last batch of one row, "
            "which BatchNorm cannot train on: it is left out of each epoch (a different row each "
            "epoch, as the order is shuffled), as fastai's drop_last does")


def raise_errors(findings: list[Finding], error: type[DeepfitError]) -> None:
    """Raise `error` with the first error-level finding's message and fix."""
    for f in findings:
        if f.severity == "error":
            raise error(f"{f.message}; {f.fix}" if f.fix else f.message)


__all__ = [
    "batch_findings",
    "build_quietly",
    "check_batch_size",
    "drop_note",
    "has_batchnorm",
    "held_out_findings",
    "quoted",
    "raise_errors",
    "unseen_classes",
]


def check_model_memory(model: nn.Module, example: torch.Tensor | None, device: torch.device) -> None:
    """SettingsError, before any allocation, when training `model` (built on the meta device:
    shapes only) on batches like `example` (a meta tensor, [batch, …]) would not fit the free
    memory of `device`: its parameters four times over (the weights, their gradients and
    AdamW's two moments) plus every tensor its forward pass makes (what backward keeps, at
    most), measured by running the forward on the meta device."""
    from deepfit.core.memory import available_memory

    n = sum(p.numel() for p in model.parameters())
    weights = 4 * sum(p.numel() * p.element_size() for p in model.parameters())
    activations = _forward_bytes(model, example) if example is not None else 0
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else available_memory()
    if weights + activations > free:
        raise SettingsError(
            f"training this model needs {(weights + activations) / 2**30:.3g} GiB "
            f"({n:,} parameters with their gradients and AdamW's two moments: "
            f"{weights / 2**30:.3g} GiB; the forward pass of one batch: {activations / 2**30:.3g} GiB), "
            f"and {free / 2**30:.3g} GiB of memory are free on {device}; choose smaller sizes "
            "(--hidden, --width, --depth) or a smaller --batch-size")


def _forward_bytes(model: nn.Module, example: torch.Tensor) -> int:
    """Bytes of every tensor the forward pass of `model` on `example` makes, both on the meta
    device; 0 when the model cannot run there."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Sum(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    _Sum.total += t.numel() * t.element_size()
            return out

    try:
        with _Sum():
            model(example)
    except Exception:  # an op without a meta kernel: the weights alone are checked
        return 0
    return _Sum.total
