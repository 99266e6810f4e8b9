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

Warning ("vanishing gradients"): the ratio stayed below `ratio` (1e-3) for `epochs` (3) epochs in
a row, in a model without skip connections (one that does not set `has_skip_connections = True`).
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from deepfit.training.callbacks.base import Callback
from deepfit.training.callbacks.guards import _warn_once

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

    def on_fit_start(self, trainer, state) -> None:
        self.groups = layer_groups(trainer.model)
        self.plain = not getattr(trainer.model, "has_skip_connections", False)

    def on_epoch_end(self, trainer, state, logs) -> None:
        norms = self.norms()
        if len(norms) < 2:
            return
        first, last = norms[next(iter(norms))], norms[next(reversed(norms))]
        ratio = first / last if last > 0 else math.nan
        timing = {k: logs.pop(k) for k in ("lr", "train_seconds", "epoch_seconds") if k in logs}
        logs.update(grad_norm_first=first, grad_norm_last=last, grad_norm_ratio=ratio, **timing)
        state.grad_norms.append({"epoch": logs["epoch"], **norms})
        if self.plain and self._vanishing(state):
            first_name, last_name = next(iter(norms)), next(reversed(norms))
            _warn_once(state, "vanishing gradients",
                       f"the first layer's gradient norm ({first_name}: {first:.3g}) has stayed below "
                       f"{self.ratio:g} of the last layer's ({last_name}: {last:.3g}) for {self.epochs} "
                       "epochs, so the first layers barely learn. A residual model keeps the gradient "
                       "flowing (--model resmlp for tables; cnn1d or transformer for sequences); "
                       "normalisation or fewer layers help too")

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
