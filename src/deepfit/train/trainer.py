"""The training loop, readable top to bottom.

    for each epoch:
        train:    for each batch: forward, loss, backward, clip, step   (no host sync per step)
        validate: forward over the whole validation split, loss and metrics on all of it
        schedule, monitor, log, callbacks (early stopping, best weights, progress, …)
    restore the best weights (a callback)

Everything the loop knows between steps lives in `self.state` (see train/state.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch import nn

from deepfit.data.batches import InMemoryBatches
from deepfit.evaluate.metrics import MetricFn
from deepfit.train.callbacks.base import Callback
from deepfit.train.state import Monitor, TrainState

EVAL_BATCH = 4096


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        epochs: int,
        device: torch.device,
        scheduler: object | None = None,
        scheduler_interval: str = "none",  # "epoch", "step" or "none"
        clip_norm: float = 1.0,  # 0 turns clipping off
        metrics: MetricFn | None = None,
        monitor: Monitor = Monitor(),
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.model = model.to(device)
        self.loss_fn = loss_fn.to(device)
        self.optimizer = optimizer
        self.epochs = epochs
        self.device = device
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.clip_norm = clip_norm
        self.metrics = metrics
        self.monitor = monitor
        self.callbacks = list(callbacks)
        self.state = TrainState()
        self._params = [p for p in model.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ fit
    def fit(self, train: InMemoryBatches, val: InMemoryBatches) -> TrainState:
        state = self.state
        self._call("on_fit_start")
        while state.epoch < self.epochs and not state.should_stop:
            epoch_start = time.perf_counter()
            self._call("on_epoch_start")
            train_loss, train_seconds = self._train_epoch(train)
            logs = {"epoch": state.epoch + 1, "train_loss": train_loss}
            logs.update(self.evaluate(val, prefix="val_"))
            logs["lr"] = self.optimizer.param_groups[0]["lr"]
            state.epoch += 1
            state.batch_in_epoch = 0
            self.monitor.update(state, logs)
            if self.scheduler_interval == "epoch":
                self.scheduler.step(logs[self.monitor.name])
            logs["train_seconds"] = train_seconds
            logs["epoch_seconds"] = time.perf_counter() - epoch_start
            state.history.append(logs)
            self._call("on_epoch_end", logs)
        self._call("on_fit_end")
        return state

    def _train_epoch(self, train: InMemoryBatches) -> tuple[float, float]:
        """One pass over the training batches: (mean loss, seconds spent in the steps)."""
        state, model, opt = self.state, self.model, self.optimizer
        batch_callbacks = [cb for cb in self.callbacks if cb.batch_hooks]
        step_scheduler = self.scheduler if self.scheduler_interval == "step" else None
        model.train()
        loss_sum = torch.zeros((), device=self.device)  # accumulates on the device: no sync
        n_seen = 0
        _synchronize(self.device)
        start = time.perf_counter()
        for xb, yb in train.epoch(state.epoch, start=state.batch_in_epoch):
            loss = self.loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.clip_norm:
                nn.utils.clip_grad_norm_(self._params, self.clip_norm, foreach=True)
            opt.step()
            if step_scheduler is not None:
                step_scheduler.step()
            loss_sum += loss.detach() * len(yb)
            n_seen += len(yb)
            state.step += 1
            state.batch_in_epoch += 1
            for cb in batch_callbacks:
                cb.on_batch_end(self, state)
        _synchronize(self.device)
        seconds = time.perf_counter() - start
        return (loss_sum / max(n_seen, 1)).item(), seconds

    # ------------------------------------------------------------- evaluate
    @torch.no_grad()
    def outputs(self, X: torch.Tensor) -> torch.Tensor:
        """Model outputs for all rows of X, in eval mode, in large chunks, on the device."""
        self.model.eval()
        X = X.to(self.device)
        return torch.cat([self.model(X[i : i + EVAL_BATCH]) for i in range(0, len(X), EVAL_BATCH)])

    def evaluate(self, data: InMemoryBatches, prefix: str = "") -> dict[str, float]:
        """Loss and metrics over a whole split (never averaged over batches)."""
        out = self.outputs(data.X)
        results = {"loss": self.loss_fn(out, data.y)}
        if self.metrics is not None:
            results.update(self.metrics(out, data.y))
        return {prefix + k: float(v) for k, v in results.items()}

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, self.state, *args)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
