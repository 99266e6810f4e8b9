"""Guards that watch a run for the classic mistakes and say so in plain words.

They read the per-epoch losses already in `state.history` (fetched once an epoch): no guard
adds a host sync to the training step, except NonFiniteGuard's one every `every` steps.

- NonFiniteGuard: a NaN or Inf loss stops training (checked every `every` steps, one host sync
  each time, and at every epoch's end) with a diagnosis: the first layer with non-finite values,
  the LR at the time, what to try. The best checkpoint is left as it was.
- LossNotDecreasing (`not_decreasing`): from epoch `epochs` on, and at the end of the run, either
  the best validation loss is no better (within `margin`) than the loss of the best prediction
  that ignores the inputs (the validation rows' class frequencies, or their mean: computed once,
  at the start, and corrected for the few rows they are fitted on, `expected_trivial_loss`) —
  nothing was learnt that carries to new data (shuffled labels, an LR so high the model
  collapsed to the prior, one so low it never moved) — or the training loss, averaged over the
  first and over the last epochs, has not gone down. It names the learning rate as the cause
  when it is: the first epoch's loss far above the trivial one or an LR of HIGH_LR or more (too
  high), an LR of LOW_LR or less with a training loss that did not move (too low). It does not
  look at the last epochs' training loss alone: with dropout and augmentation that loss is noisy
  even when the run goes well (the rule it replaces, the last 5 epochs' training loss against
  the earlier minimum, fired on 6 of the 8 good runs of the calibration set). Before the end
  it does not judge while the validation loss is still falling (`still_falling`) nor on fewer
  than SMALL_VAL validation rows, whose loss is too noisy to tell a slow start from nothing
  learnt (a 5-row split was 1% from the trivial loss at epoch 10 and 17% below it at 20); and
  the end of the run judges again: a warning the whole run contradicts is withdrawn.
- OverfittingGap (`overfitting`): every one of the last `window` validation losses is above
  the lowest the validation loss had settled at (the least median of `window` epochs in a row)
  by more than GAP_FLOOR and 10%, and the training loss (their median) is more than GAP_FLOOR
  and `ratio` x below them: the validation loss has gone up and stayed up while the training
  loss fell. One noisy epoch, or an excursion the validation loss comes back from, is not
  overfitting; nor is an early epoch's validation loss above the training loss while it still
  falls; and a ratio alone means nothing near zero loss (0.02 against 0.0006 is "37x" of
  nothing).
- DeadReLU: the share of ReLU units that output zero for every validation sample.
Findings go to `state.warnings` (saved with the run, in config.json and the report). The rules'
thresholds were set on real runs, good and planted bad (tests/test_guard_calibration.py).
"""

from __future__ import annotations

import logging
import math
import statistics

import torch
from torch import nn

from deepfit.core.words import plural
from deepfit.evaluation.checklist import (
    GAP_FLOOR,
    GAP_RATIO,
    TREND,
    loss_trend,
    over,
    still_falling,
)
from deepfit.training.callbacks.base import Callback

# the learning rates that are the cause when nothing was learnt (AdamW's default is 1e-3)
HIGH_LR, LOW_LR = 0.1, 1e-5
JUMP = 3.0  # a first epoch's training loss this many times the trivial loss: it blew up
SMALL_VAL = 50  # fewer validation rows: LossNotDecreasing judges at the end of the run only
# what the guards say when the learning rate is the cause (checks/useless.py looks for them)
LR_TOO_HIGH, LR_TOO_LOW = "the learning rate is far too high", "the learning rate is too low"


def _warn_once(state, key: str, message: str) -> None:
    if not any(w.startswith(key) for w in state.warnings):
        state.warnings.append(f"{key}: {message}")
        logging.getLogger("deepfit").warning(f"{key}: {message}")


class NonFiniteGuard(Callback):
    batch_hooks = True

    def __init__(self, every: int = 20) -> None:
        self.every = every

    def on_batch_end(self, trainer, state) -> None:
        if state.step % self.every == 0 and not torch.isfinite(trainer.epoch_loss):
            # state.epoch counts the epochs completed: this step is in the next one
            self._stop(trainer, state, f"the training loss became NaN/Inf at step {state.step} "
                       f"(epoch {state.epoch + 1}")

    def on_epoch_end(self, trainer, state, logs) -> None:
        # the trainer has counted this epoch already: state.epoch is its 1-based number
        for key, what in (("train_loss", "training"), ("val_loss", "validation")):
            if not math.isfinite(logs[key]) and not state.should_stop:
                self._stop(trainer, state, f"the {what} loss of epoch {logs.get('epoch', state.epoch)} "
                           f"was NaN/Inf (after step {state.step}")

    def _stop(self, trainer, state, what: str) -> None:
        lr = trainer.optimizer.param_groups[0]["lr"]
        layer = first_nonfinite(trainer.model)
        where = f"; the first layer with non-finite values is {layer}" if layer else ""
        state.should_stop = True
        _warn_once(state, "non-finite values",
                   f"{what}, lr {lr:.3g}){where}. Try a learning rate 10x lower, check the inputs "
                   "for inf/NaN, keep gradient clipping on, and prefer bf16 to fp16")
        state.stop_reason = next(w for w in state.warnings if w.startswith("non-finite values"))


def first_nonfinite(model: nn.Module) -> str | None:
    """The name of the first parameter (in the model's order) whose value or gradient is not finite."""
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            return f"{name} (weights)"
        if param.grad is not None and not torch.isfinite(param.grad).all():
            return f"{name} (gradient)"
    return None


def _losses(history: list[dict[str, float]], key: str) -> list[float] | None:
    """The column `key` of the history, or None when a value is not finite (NonFiniteGuard's)."""
    values = [float(h[key]) for h in history]
    return values if all(math.isfinite(v) for v in values) else None


def trivial_loss(loss_fn: nn.Module, target: torch.Tensor | None) -> float | None:
    """The loss `loss_fn` gives the best prediction that ignores the inputs, on these targets:
    the class frequencies as logits (weighted as the loss weighs the classes, which is what
    weighted cross-entropy's best constant is) for class codes [N], the mean for values [N] or
    [N, H]. None without targets, or for a loss that takes other outputs. One host sync."""
    if target is None or not len(target):
        return None
    try:
        value = _constant_loss(loss_fn, target)
    except (RuntimeError, ValueError, IndexError):  # a loss of another shape: no reference
        return None
    return value if math.isfinite(value) else None


def expected_trivial_loss(loss_fn: nn.Module, target: torch.Tensor | None) -> float | None:
    """`trivial_loss`, corrected for being fitted on the rows it scores: the mean of n values,
    scored on them, makes (n−1)/n of the squared error it makes on new rows (×n/(n−1): the
    variance's unbiased estimate), and k class frequencies about (k−1)/2n nats less
    cross-entropy (the plug-in entropy's bias). On 5 validation rows the uncorrected mean's loss is 20% too
    low: a model that learnt something looks no better than it. Two host syncs."""
    value = trivial_loss(loss_fn, target)
    if value is None:
        return None
    n = len(target)
    if target.is_floating_point():
        return value * n / (n - 1) if n > 1 else None
    return value + (int(torch.unique(target).numel()) - 1) / (2 * n)


def _constant_loss(loss_fn: nn.Module, target: torch.Tensor) -> float:
    with torch.no_grad():
        if target.is_floating_point():
            out = target.mean(0, keepdim=True).expand_as(target)
        else:
            weight = getattr(loss_fn, "weight", None)
            weight = getattr(loss_fn, "alpha", None) if weight is None else weight
            k = len(weight) if weight is not None else int(target.max()) + 1
            share = torch.bincount(target.reshape(-1).long(), minlength=k).double()
            share = share * weight.double() if weight is not None else share
            out = (share / share.sum()).clamp(min=1e-12).log().float().expand(len(target), k)
        return float(loss_fn(out, target))


def _targets(data) -> torch.Tensor | None:
    """The targets of a split's batches, when they hold them in memory (both kinds do)."""
    y = getattr(data, "y", None)
    return y if y is not None else getattr(getattr(data, "source", None), "y", None)


def not_decreasing(history: list[dict[str, float]], reference: float | None,
                   margin: float = TREND, trivial: str = "the class frequencies") -> str | None:
    """What LossNotDecreasing says about these epochs, or None: the best validation loss no
    better than `reference` (the trivial prediction's, `expected_trivial_loss`: predicting
    `trivial`, "the class frequencies" or "the mean") by `margin`, or the training loss averaged
    over the last epochs not `margin` below its average over the first (up to 3 each); with the
    learning rate named when it is the cause (`lr_cause`). Needs 3 finite epochs."""
    train, val = _losses(history, "train_loss"), _losses(history, "val_loss")
    if train is None or val is None or len(history) < 3:
        return None
    n, best = len(history), min(val)
    if reference is not None and best >= (1 - margin) * reference:
        cause = lr_cause(history, reference, margin) or (
            "Check that the target depends on the features (labels shuffled or misaligned?); if "
            "the loss jumped at the start try a learning rate 10x lower, if it barely moved 10x "
            "higher")
        return (f"after {plural(n, 'epoch')} the best validation loss ({best:.4g}, epoch "
                f"{val.index(best) + 1}) is no better than {reference:.4g}, what predicting "
                f"{trivial} without looking at the inputs scores: nothing was learnt that carries "
                f"to data the model has not seen. {cause}")
    first, last, w = loss_trend(train)
    if last >= (1 - margin) * first:
        cause = lr_cause(history, reference, margin) or (
            "try a learning rate 10x higher (10x lower if it rose), and check the inputs and the "
            "labels")
        return (f"the training loss has not gone down: {first:.4g} {over(w, 'first')}, "
                f"{last:.4g} {over(w, 'last')}; {cause}")
    return None


def lr_cause(history: list[dict[str, float]], reference: float | None,
             margin: float = TREND) -> str | None:
    """The learning rate as the cause of a run that learnt nothing, in words, or None: far too
    high when the first epoch's training loss is JUMP x the trivial loss or more, or the LR
    reached HIGH_LR; too low when it stayed at LOW_LR or below and the training loss did not go
    down by `margin`. The LR is the highest the history's "lr" column holds."""
    rates = [h["lr"] for h in history if isinstance(h.get("lr"), (int, float))]
    lr = max(rates) if rates else None
    first_loss = history[0]["train_loss"]
    jumped = reference is not None and reference > 0 and first_loss >= JUMP * reference
    at = f" (lr {lr:.3g})" if lr is not None else ""
    if jumped or (lr is not None and lr >= HIGH_LR):
        how = (f"the first epoch's training loss, {first_loss:.4g}, jumped far above the "
               f"trivial prediction's {reference:.4g}" if jumped else "the updates overshoot")
        return (f"{LR_TOO_HIGH.capitalize()}{at}: {how}, and the model collapsed to the "
                "prediction that ignores the inputs. Try a learning rate 10x lower (the default "
                "is 0.001)")
    first, last, _ = loss_trend([h["train_loss"] for h in history])
    if lr is not None and lr <= LOW_LR and last >= (1 - margin) * first:
        return (f"{LR_TOO_LOW.capitalize()}{at}: the weights barely moved. Try a learning rate "
                "100x higher (the default is 0.001)")
    return None


class LossNotDecreasing(Callback):
    """`not_decreasing` on the history from epoch `epochs` on (early stopping's patience, 10 by
    default, gives a run that learns nothing at least that many) while the validation loss is
    not still falling, on SMALL_VAL validation rows or more; and at the end of the run, on any
    number, withdrawing an earlier warning that the whole run contradicts."""

    KEY = "loss not decreasing"

    def __init__(self, epochs: int = 10, margin: float = TREND) -> None:
        self.epochs, self.margin = epochs, margin
        self.reference: float | None = None
        self.rows: int | None = None
        self.trivial = "the class frequencies"

    def on_fit_start(self, trainer, state) -> None:
        loss_fn, target = getattr(trainer, "loss_fn", None), _targets(getattr(trainer, "val_data", None))
        if hasattr(loss_fn, "trivial_reference"):  # a loss of the inputs (an autoencoder's)
            self.reference = loss_fn.trivial_reference(trainer.model, getattr(trainer, "val_data", None))
            self.rows, self.trivial = len(target) if target is not None else None, "the mean of every value"
            return
        self.reference = expected_trivial_loss(loss_fn, target) if loss_fn is not None else None
        self.rows = len(target) if target is not None else None
        if target is not None and target.is_floating_point():
            self.trivial = "the mean"

    def on_epoch_end(self, trainer, state, logs) -> None:
        if state.epoch < self.epochs or (self.rows is not None and self.rows < SMALL_VAL):
            return
        if not still_falling([h["val_loss"] for h in state.history])[0]:
            self._check(state)

    def on_fit_end(self, trainer, state) -> None:
        message = self._check(state)
        said = [w for w in state.warnings if w.startswith(self.KEY + ":")]
        if message is None and said and not self._nonfinite(state):
            state.warnings.remove(said[0])
            best = min(h["val_loss"] for h in state.history)
            than = f", below the trivial prediction's {self.reference:.4g}," if self.reference else ""
            logging.getLogger("deepfit").info(
                f"{self.KEY}: withdrawn: by epoch {len(state.history)} the best validation loss "
                f"was {best:.4g}{than} and the training loss had gone down: it learnt after all")

    @staticmethod
    def _nonfinite(state) -> bool:
        return any(w.startswith("non-finite values") for w in state.warnings)

    def _check(self, state) -> str | None:
        if self._nonfinite(state):
            return None  # that guard has said why
        message = not_decreasing(state.history, self.reference, self.margin, self.trivial)
        if message:
            _warn_once(state, self.KEY, message)
        return message


def overfitting(history: list[dict[str, float]], ratio: float = GAP_RATIO,
                floor: float = GAP_FLOOR, window: int = 5) -> str | None:
    """What OverfittingGap says about these epochs, or None: the least of the last `window`
    validation losses above `low` (the least median of `window` epochs in a row) by more than
    `floor` and 10% of it, and above the training loss (the median of the same epochs) by
    more than `floor` and `ratio` x. Needs `window` + 1 finite epochs."""
    train, val = _losses(history, "train_loss"), _losses(history, "val_loss")
    if train is None or val is None or len(history) <= window:
        return None
    low = min(statistics.median(val[i - window : i]) for i in range(window, len(val) + 1))
    now, fit = min(val[-window:]), statistics.median(train[-window:])
    if now - low > max(floor, 0.1 * low) and now - fit > floor and now > ratio * fit:
        at, times = len(history), f"{now / fit:.0f}x" if fit > 0 else "far"
        return (f"validation loss has stayed above {now:.4g} for epochs {at - window + 1}–{at}, "
                f"up from {low:.4g}, while the training loss fell to {fit:.4g}, {times} lower: "
                "the model is learning the training rows, not the task. More data, "
                "augmentation, more dropout or weight decay would help (the best epoch's "
                "weights are kept)")
    return None


class OverfittingGap(Callback):
    """`overfitting` on the history, at every epoch's end."""

    def __init__(self, ratio: float = GAP_RATIO, floor: float = GAP_FLOOR, window: int = 5) -> None:
        self.ratio, self.floor, self.window = ratio, floor, window

    def on_epoch_end(self, trainer, state, logs) -> None:
        message = overfitting(state.history, self.ratio, self.floor, self.window)
        if message:
            _warn_once(state, "overfitting", message)


class DeadReLU(Callback):
    """Measured once, at the end of training, on up to 2,048 validation rows."""

    def __init__(self, threshold: float = 0.5, rows: int = 2048) -> None:
        self.threshold, self.rows = threshold, rows
        self.fractions: dict[str, float] = {}

    def on_fit_end(self, trainer, state) -> None:
        data = getattr(trainer, "val_data", None)
        relus = [(n, m) for n, m in trainer.model.named_modules() if isinstance(m, nn.ReLU)]
        if data is None or not relus:
            return
        xb = next(iter(data.eval_batches()))[0][: self.rows]
        alive: dict[str, torch.Tensor] = {}
        hooks = [m.register_forward_hook(
            lambda mod, inp, out, name=n: alive.__setitem__(name, (out.flatten(2) if out.ndim > 2 else out).gt(0).any(0)))
            for n, m in relus]
        trainer.model.eval()
        with torch.no_grad():
            trainer.model(xb)
        for h in hooks:
            h.remove()
        self.fractions = {name: 1.0 - a.float().mean().item() for name, a in alive.items()}
        dead = {n: f for n, f in self.fractions.items() if f > self.threshold}
        if dead:
            shown = ", ".join(f"{n} {f:.0%}" for n, f in dead.items())
            _warn_once(state, "dead ReLU", f"units that never activate on validation data: {shown}; "
                       "try a lower learning rate, LeakyReLU/GELU, or BatchNorm before the ReLU")
