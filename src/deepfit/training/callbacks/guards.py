"""Guards that watch a run for the classic mistakes and say so in plain words.

- NonFiniteGuard: a NaN or Inf loss stops training (checked every `every` steps, one host sync
  each time, and at every epoch's end) with a diagnosis: the first layer with non-finite values,
  the LR at the time, what to try. The best checkpoint is left as it was.
- LossNotDecreasing: the training loss has not gone down for `epochs` epochs.
- OverfittingGap: validation loss more than `ratio` × the training loss.
- DeadReLU: the share of ReLU units that output zero for every validation sample.
Findings go to `state.warnings` (saved with the run, in config.json and the report).
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from deepfit.training.callbacks.base import Callback


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
            self._stop(trainer, state, "the training loss")

    def on_epoch_end(self, trainer, state, logs) -> None:
        for key in ("train_loss", "val_loss"):
            if not math.isfinite(logs[key]) and not state.should_stop:
                self._stop(trainer, state, f"the {key.replace('_', ' ')}")

    def _stop(self, trainer, state, what: str) -> None:
        lr = trainer.optimizer.param_groups[0]["lr"]
        layer = first_nonfinite(trainer.model)
        where = f"; the first layer with non-finite values is {layer}" if layer else ""
        state.should_stop = True
        _warn_once(state, "non-finite values",
                   f"{what} became NaN/Inf at step {state.step} (epoch {state.epoch + 1}, "
                   f"lr {lr:.3g}){where}. Try a learning rate 10x lower, check the inputs for "
                   "inf/NaN, keep gradient clipping on, and prefer bf16 to fp16")
        state.stop_reason = next(w for w in state.warnings if w.startswith("non-finite values"))


def first_nonfinite(model: nn.Module) -> str | None:
    """The name of the first parameter (in the model's order) whose value or gradient is not finite."""
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            return f"{name} (weights)"
        if param.grad is not None and not torch.isfinite(param.grad).all():
            return f"{name} (gradient)"
    return None


class LossNotDecreasing(Callback):
    def __init__(self, epochs: int = 5) -> None:
        self.epochs = epochs

    def on_epoch_end(self, trainer, state, logs) -> None:
        losses = [h["train_loss"] for h in state.history]
        if len(losses) > self.epochs and min(losses[-self.epochs :]) >= min(losses[: -self.epochs]):
            _warn_once(state, "loss not decreasing",
                       f"the training loss has not decreased for {self.epochs} epochs "
                       f"(best {min(losses):.4g}); try a higher or lower learning rate, check the "
                       "labels, or a larger model")


class OverfittingGap(Callback):
    def __init__(self, ratio: float = 2.0) -> None:
        self.ratio = ratio

    def on_epoch_end(self, trainer, state, logs) -> None:
        train, val = logs["train_loss"], logs["val_loss"]
        if train > 0 and val > self.ratio * train:
            _warn_once(state, "overfitting",
                       f"validation loss {val:.4g} is {val / train:.1f}x the training loss "
                       f"{train:.4g} at epoch {state.epoch}; more data, augmentation, more dropout "
                       "or weight decay would help (the best epoch's weights are kept)")


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
