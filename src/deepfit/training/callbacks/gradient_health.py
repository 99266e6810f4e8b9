"""GradientHealth: each layer's gradient norm at every epoch's end, and a warning when the first
layers' gradients vanish.

Layer groups (`layer_groups`): the modules that hold weights, in the order the model registers
them (the forward order for deepfit's models): each Linear and Conv, each layer of a GRU/LSTM/RNN
(its `*_l{k}` parameters, both directions together), each attention's input projection.
Normalisation layers and embeddings are left out (their gradients say nothing about depth), and so
are parameters outside such a module (learned positions, a CLS token).

A group's norm is the L2 norm of the gradients of all its parameters, as the epoch's last step
left them (the next step's zero_grad has not run yet, so there is no per-step work; clipping
scales every group alike and leaves the ratio as it was). Per epoch the logs (and history.csv)
get `grad_norm_first`, `grad_norm_last` and `grad_norm_ratio` = first / last, placed before
`lr` so the timing columns stay last; every group's norm goes to `state.grad_norms`
(gradients.csv in the run directory).

Warnings, judged on the last `epochs` (3) epochs:

- "dead units" (first): the training went wrong, not the depth. The first layer's gradient is
  exactly 0 in each (no gradient reaches it at all: the units above it output the same for every
  input, dead ReLUs or saturated activations), or the ratio is below `ratio` while the
  validation loss stays at the trivial prediction's (guards.expected_trivial_loss) — and the
  run shows how it got there: the first epoch's training loss was guards.JUMP x the trivial
  loss or more, the LR reached guards.HIGH_LR, or the ratio was healthy in an earlier epoch (a
  deep plain model's gradients are small from the start). An exact 0 in a model with skip
  connections is dead units whatever the LR. The advice is a lower LR, not another model
  (`deepfit train digits --lr 5` had said "vanishing gradients … --model resmlp").
- "vanishing gradients": otherwise, the ratio stayed below `ratio` in a model without skip
  connections (one that does not set `has_skip_connections = True`). The end of the run drops
  it when "dead units" was said later.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from deepfit.core.words import plural
from deepfit.evaluation.checklist import TREND
from deepfit.training.callbacks.base import Callback
from deepfit.training.callbacks.guards import (
    HIGH_LR,
    JUMP,
    _targets,
    _warn_once,
    expected_trivial_loss,
)

SKIPPED = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.Embedding, nn.EmbeddingBag)
LAYER = re.compile(r"_l(\d+)")


def layer_groups(model: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """(name, parameters) of each weight-bearing layer, in registration order."""
    groups: list[tuple[str, list[nn.Parameter]]] = []
    for name, module in model.named_modules():
        if isinstance(module, SKIPPED):
            continue
        own = [(n, p) for n, p in module.named_parameters(recurse=False) if p.requires_grad]
        if not any("weight" in n for n, _ in own):
            continue
        if isinstance(module, nn.RNNBase):
            layers: dict[str, list[nn.Parameter]] = {}
            for n, p in own:
                match = LAYER.search(n)
                layers.setdefault(match.group(1) if match else "0", []).append(p)
            groups += [(f"{name}.l{k}", ps) for k, ps in layers.items()]
        else:
            groups.append((name or type(model).__name__, [p for _, p in own]))
    return groups


class GradientHealth(Callback):
    def __init__(self, ratio: float = 1e-3, epochs: int = 3) -> None:
        self.ratio, self.epochs = ratio, epochs
        self.groups: list[tuple[str, list[nn.Parameter]]] = []
        self.reference: float | None = None

    def on_fit_start(self, trainer, state) -> None:
        self.groups = layer_groups(trainer.model)
        self.plain = not getattr(trainer.model, "has_skip_connections", False)
        loss_fn = getattr(trainer, "loss_fn", None)
        target = _targets(getattr(trainer, "val_data", None))
        self.reference = expected_trivial_loss(loss_fn, target) if loss_fn is not None else None

    def on_epoch_end(self, trainer, state, logs) -> None:
        norms = self.norms()
        if len(norms) < 2:
            return
        first, last = norms[next(iter(norms))], norms[next(reversed(norms))]
        ratio = first / last if last > 0 else math.nan
        timing = {k: logs.pop(k) for k in ("lr", "train_seconds", "epoch_seconds") if k in logs}
        logs.update(grad_norm_first=first, grad_norm_last=last, grad_norm_ratio=ratio, **timing)
        state.grad_norms.append({"epoch": logs["epoch"], **norms})
        dead = self._dead(state, norms)
        if dead:
            _warn_once(state, "dead units", dead)
        elif self.plain and self._vanishing(state):
            first_name, last_name = next(iter(norms)), next(reversed(norms))
            _warn_once(state, "vanishing gradients",
                       f"the first layer's gradient norm ({first_name}: {first:.3g}) has stayed below "
                       f"{self.ratio:g} of the last layer's ({last_name}: {last:.3g}) for "
                       f"{plural(self.epochs, 'epoch')}, so the first layers barely learn. A "
                       "residual model keeps the gradient flowing (--model resmlp for tables; "
                       "cnn1d or transformer for sequences); normalisation or fewer layers help too")

    def on_fit_end(self, trainer, state) -> None:
        if any(w.startswith("dead units:") for w in state.warnings):  # not depth after all
            state.warnings[:] = [w for w in state.warnings if not w.startswith("vanishing gradients:")]

    def _dead(self, state, norms: dict[str, float]) -> str | None:
        """The "dead units" diagnosis of the last `epochs` epochs, or None (module docstring)."""
        recent = state.history[-self.epochs :]
        if len(recent) < self.epochs:
            return None
        zero = all(h.get("grad_norm_first") == 0 for h in recent)
        ref, first_loss = self.reference, state.history[0]["train_loss"]
        jumped = ref is not None and ref > 0 and first_loss >= JUMP * ref
        rates = [h["lr"] for h in state.history if isinstance(h.get("lr"), (int, float))]
        lr = max(rates) if rates else None
        earlier = [h.get("grad_norm_ratio", math.nan) for h in state.history[: -self.epochs]]
        diverged = jumped or (lr is not None and lr >= HIGH_LR) or any(r >= self.ratio for r in earlier)
        stuck = ref is not None and all(h["val_loss"] >= (1 - TREND) * ref for h in recent)
        if not ((diverged and (zero or (self._vanishing(state) and stuck))) or (zero and not self.plain)):
            return None
        at = f"epochs {len(state.history) - self.epochs + 1}–{len(state.history)}"
        if zero:
            below = next((name for name, v in reversed(norms.items()) if v == 0), next(iter(norms)))
            said = (f"no gradient reaches {below} or the layers below it (their gradient was "
                    f"exactly 0 in {at})")
        else:
            name = next(iter(norms))
            said = (f"the first layer's gradient ({name}) collapsed to below {self.ratio:g} of the "
                    f"last layer's in {at}, while the validation loss stayed at the trivial "
                    f"prediction's ({ref:.4g})")
        why = []
        if jumped:
            why.append(f"the first epoch's training loss, {first_loss:.4g}, was "
                       f"{first_loss / ref:.0f}x the trivial prediction's {ref:.4g}")
        if lr is not None and lr >= HIGH_LR:
            why.append(f"the learning rate reached {lr:.3g}")
        how = (f" ({'; '.join(why)}: it is too high and blew the weights up)" if why else "")
        return (f"{said}: the units above it output the same for every input (dead ReLUs, or "
                f"saturated activations), so the model stopped learning. That is the training, "
                f"not the depth: typically a learning rate too high{how}. Try a learning rate "
                "10x lower (the default is 0.001) with gradient clipping on; LeakyReLU/GELU or "
                "normalisation before the activations make dead units rarer")

    @torch.no_grad()
    def norms(self) -> dict[str, float]:
        """Each group's gradient norm (groups without a gradient left out): one sync in all."""
        named = [(name, [p.grad for p in ps if p.grad is not None]) for name, ps in self.groups]
        named = [(name, grads) for name, grads in named if grads]
        if not named:
            return {}
        values = torch.stack([torch.linalg.vector_norm(torch.stack([g.float().norm() for g in grads]))
                              for _, grads in named]).tolist()
        return {name: value for (name, _), value in zip(named, values)}

    def _vanishing(self, state) -> bool:
        recent = [h.get("grad_norm_ratio", math.nan) for h in state.history[-self.epochs :]]
        return len(recent) == self.epochs and all(r < self.ratio for r in recent)
