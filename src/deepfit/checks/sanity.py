"""Model sanity: the checks to run on a freshly built model before trusting any training run.

On one small batch of training rows: the output has the shape the task needs; the forward and
backward pass stay finite; a gradient reaches every trainable parameter; the initial loss is what
an untrained model should score (ln C for C classes); and the model can overfit the batch.
`model_sanity` works on a copy, with the random state put back afterwards, so the caller's model
and a seeded run are left exactly as they were.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from deepfit.checks.findings import Finding, names
from deepfit.core.words import plural
from deepfit.models import InputSpec, OutputSpec
from deepfit.training.losses import DEFAULT_LOSS, create_loss

BATCH_ROWS = 32
OVERFIT_STEPS = 200
OVERFIT_SCORE = 0.9  # accuracy, or R² for regression, on the batch
OVERFIT_LR = 1e-2
LOSS_TOLERANCE = 1.0  # how far the initial loss may sit from its expected value


def sanity_batch(X: torch.Tensor, y: torch.Tensor, rows: int = BATCH_ROWS,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random batch of (encoded) training rows."""
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))[:rows]
    return X[order], y[order]


def model_sanity(model: nn.Module, input_spec: InputSpec, output_spec: OutputSpec,
                 batch: tuple[torch.Tensor, torch.Tensor], *, name: str = "model",
                 steps: int = OVERFIT_STEPS, seed: int = 0) -> list[Finding]:
    """Findings about `model` on `batch` = (encoded features [B, n_features], encoded targets [B]).
    `name` prefixes the subjects (useful when several models are checked)."""
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    X, y = batch[0].to(device), batch[1].to(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), _one_thread():
        torch.manual_seed(seed)
        model = copy.deepcopy(model)
        findings = _output_shape(model, X, output_spec, name)
        if findings[0].severity == "error":
            return findings
        loss_fn = create_loss(DEFAULT_LOSS[output_spec.task]).to(device)
        try:
            findings += _initial_loss(model, X, y, loss_fn, output_spec, name)
            findings += _forward_backward(model, X, y, loss_fn, name)
            findings += _overfit(model, X, y, loss_fn, output_spec, name, steps)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            findings.append(Finding(
                "train_step", "error", f"a training step fails on a batch of {len(X)} rows: "
                f"{_first_line(exc)}", name, None,
                "make the loss, the targets and the model's training mode agree (BatchNorm "
                "needs more than one row)"))
    return findings


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def _one_thread() -> Iterator[None]:
    """A batch of 32 rows is too small to gain from threads; on a busy machine their
    synchronisation makes each step many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _output_shape(model: nn.Module, X: torch.Tensor, spec: OutputSpec, name: str) -> list[Finding]:
    expected = (len(X), spec.n_outputs)
    model.eval()
    try:
        with torch.no_grad():
            shape = tuple(model(X).shape)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        return [Finding("output_shape", "error", f"the forward pass fails on a batch of "
                        f"{len(X)} rows: {_first_line(exc)}", name, None,
                        "make the model's input layer match the data's input spec")]
    if shape != expected:
        return [Finding("output_shape", "error",
                        f"the output has shape {list(shape)}; the loss needs {list(expected)} "
                        f"({plural(spec.n_outputs, 'output')} for {spec.task})", name,
                        float(shape[-1]) if shape else None,
                        f"give the model's last layer {plural(spec.n_outputs, 'output')} and no extra "
                        "dimensions")]
    return [Finding("output_shape", "info", f"the output has shape {list(shape)}, as the loss "
                    "needs", name, float(shape[-1]))]


def _expected_loss(y: torch.Tensor, spec: OutputSpec) -> tuple[float, str]:
    if spec.task == "classification":
        return math.log(spec.n_outputs), f"ln({spec.n_outputs})"
    return float((y.float() ** 2).mean()), "the mean square of the standardised target"


def _initial_loss(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module,
                  spec: OutputSpec, name: str) -> list[Finding]:
    model.eval()
    with torch.no_grad():
        loss = float(loss_fn(model(X), y))
    expected, what = _expected_loss(y, spec)
    if not math.isfinite(loss):
        return []  # reported by the finite check
    message = f"the initial loss is {loss:.3f}; an untrained model should score about {what} = {expected:.3f}"
    if abs(loss - expected) <= LOSS_TOLERANCE:
        return [Finding("initial_loss", "info", message, name, loss)]
    return [Finding(
        "initial_loss", "warning",
        message + ": its outputs start too confident or too large, which wastes the first "
        "epochs and can stall training", name, loss,
        "initialise the last layer small (e.g. zero its bias and scale its weights by 0.01), "
        "and check that nothing multiplies the outputs")]


def _forward_backward(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module,
                      name: str) -> list[Finding]:
    """One training-mode step without the update: is it finite, and where does a gradient go?"""
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(X)
    loss = loss_fn(out, y)
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    none = [n for n, p in trainable if p.grad is None]
    bad = [n for n, p in trainable if p.grad is not None and not torch.isfinite(p.grad).all()]
    zero = [n for n, p in trainable if p.grad is not None and n not in bad and not p.grad.any()]
    findings = []
    n_bad_values = int((~torch.isfinite(X)).sum() + (~torch.isfinite(out)).sum())
    if n_bad_values or bad or not torch.isfinite(loss):
        where = ", ".join(part for part, hit in (
            ("input", not torch.isfinite(X).all()), ("output", not torch.isfinite(out).all()),
            ("loss", not torch.isfinite(loss)), ("gradients of " + names(bad), bool(bad))) if hit)
        findings.append(Finding(
            "finite", "error", f"NaN or Inf in the {where}", _subject(name, bad),
            float(n_bad_values + len(bad)),
            "look for a log or division of zero, an exploding layer, or NaN in the data; lower "
            "the learning rate or clip gradients"))
    else:
        findings.append(Finding("finite", "info", "the forward and backward pass are finite",
                                name, 0.0))
    if none:
        findings.append(Finding(
            "gradient_flow", "error",
            f"no gradient reaches {names(none)}: detached from the loss or unused, so "
            "they will never learn", _subject(name, none), float(len(none)),
            "connect them to the output (no .detach(), .item(), numpy round-trip or "
            "torch.no_grad() in forward), remove them if unused, or freeze them on purpose "
            "with requires_grad_(False)"))
    if zero:
        findings.append(Finding(
            "gradient_flow", "warning",
            f"the gradient of {names(zero)} is exactly zero on this batch: a path multiplied by "
            "zero, units that are all dead (ReLU), or a bias just before a normalisation that "
            "cancels it", _subject(name, zero), float(len(zero)),
            "check the layers that feed them; a bias before BatchNorm can be dropped "
            "(bias=False)"))
    if not none and not zero:
        findings.append(Finding("gradient_flow", "info", f"a gradient reaches all {len(trainable)} "
                                "trainable parameter tensors", name, 0.0))
    model.zero_grad(set_to_none=True)
    return findings


def _subject(name: str, parameters: list[str]) -> str:
    return f"{name}: {names(parameters)}" if parameters else name


def _batch_score(model: nn.Module, X: torch.Tensor, y: torch.Tensor, task: str) -> float:
    """Accuracy, or R², of the model (in eval mode) on the batch."""
    model.eval()
    with torch.no_grad():
        out = model(X)
    model.train()
    if task == "classification":
        return float((out.argmax(dim=1) == y).float().mean())
    residual = float(((out.reshape(y.shape) - y) ** 2).mean())
    spread = float(((y - y.mean()) ** 2).mean())
    return 1.0 - residual / spread if spread > 0 else float(residual < 1e-3)


def _overfit(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module,
             spec: OutputSpec, name: str, steps: int) -> list[Finding]:
    """Adam at lr 1e-2, dropout as built, until the batch is fitted (≥ 90%) or `steps` run out."""
    what = "accuracy" if spec.task == "classification" else "R²"
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        return [Finding("overfit_batch", "error", "the model has no trainable parameter", name,
                        None, "unfreeze at least the last layer")]
    optimizer = torch.optim.Adam(trainable, lr=OVERFIT_LR)
    best = -math.inf
    model.train()
    for step in range(1, steps + 1):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(X), y).backward()
        optimizer.step()
        score = _batch_score(model, X, y, spec.task)
        if score >= OVERFIT_SCORE:
            return [Finding("overfit_batch", "info", f"fits a batch of {len(X)} rows to {what} "
                            f"{score:.0%} in {step} steps", name, float(step))]
        best = max(best, score) if math.isfinite(score) else best
    return [Finding(
        "overfit_batch", "error",
        f"cannot fit a batch of {len(X)} rows: best {what} {best:.0%} after {steps} steps (Adam, "
        f"lr {OVERFIT_LR}); a model that cannot memorise {len(X)} rows will not learn the data",
        name, best if math.isfinite(best) else None,
        "look for a detached or frozen layer, a loss that does not match the targets, too much "
        "dropout or regularisation, or too little capacity")]
