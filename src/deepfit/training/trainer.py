"""The training loop, readable top to bottom.

    for each epoch:
        train:    for each batch: augment (images), forward, loss, backward, clip, step (no host sync)
        validate: forward over the whole validation split, loss and metrics on all of it
        schedule, monitor, log, callbacks (early stopping, best weights, checkpoint, progress, …)
    restore the best weights (a callback)

Everything the loop knows between steps lives in `self.state` (training/state.py); a stop asked
for by a signal ends the epoch after the current step and raises `TrainingInterrupted` once the
callbacks (the checkpoint among them) have seen it.

Under torchrun (`distributed`, training/distributed.py) the same loop runs in every process:
the model is in DistributedDataParallel, each process steps through its rows of every global
batch, the epoch's loss is summed over the processes, and evaluation gathers every process's
block of rows, so every process computes the same metrics and decides the same. A stop (a
signal, a callback's) is agreed on every STOP_SYNC steps and at the epoch's end, so that all
processes leave the epoch at the same step.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from deepfit.data.batches import InMemoryBatches, StreamingBatches
from deepfit.errors import SettingsError, TrainingInterrupted
from deepfit.evaluation.metrics import MetricFn
from deepfit.training.callbacks.base import Callback
from deepfit.training.distributed import Distributed
from deepfit.training.state import Monitor, TrainState, capture_rng, restore_rng

Batches = InMemoryBatches | StreamingBatches
PRECISIONS = {"32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
STOP_SYNC = 20  # under torchrun: steps between agreements on a stop (NonFiniteGuard's cadence)


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
        precision: str = "32",  # "32", "bf16" or "fp16" (autocast; a GradScaler for fp16)
        compile: bool = False,
        metrics: MetricFn | None = None,
        monitor: Monitor | None = None,
        callbacks: Sequence[Callback] = (),
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        distributed: Distributed | None = None,  # torchrun: this process's place in the job
    ) -> None:
        if precision not in PRECISIONS:
            raise SettingsError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.model = model.to(device)
        self.dist = distributed
        if distributed is None:
            self.forward = torch.compile(self.model) if compile else self.model
        else:  # DistributedDataParallel for training; evaluation runs self.model on each block
            self.forward = distributed.wrap(self.model, compile)
        self.loss_fn = loss_fn.to(device)
        self.optimizer = optimizer
        self.epochs = epochs
        self.device = device
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.clip_norm = clip_norm
        self.precision = precision
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        self.metrics = metrics
        self.monitor = monitor or Monitor()
        self.callbacks = list(callbacks)
        # a batch transform for training batches only, on the device (modalities/image/augment.py); its
        # randomness must come from the global torch generator, which checkpoints save
        self.augment = augment
        self.state = TrainState()
        self.stop_requested = False  # set by a signal handler; checked after each step
        self.epoch_loss = torch.zeros((), device=device)  # running sum over the epoch's samples
        self._params = [p for p in model.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ fit
    def fit(self, train: Batches, val: Batches) -> TrainState:
        state = self.state
        self.val_data = val
        self._call("on_fit_start")
        while state.epoch < self.epochs and not state.should_stop:
            epoch_start = time.perf_counter()
            self.model.train()  # before the hook, so a callback can keep frozen layers in eval mode
            self._call("on_epoch_start")
            train_loss, train_seconds = self._train_epoch(train)
            if self.dist is not None:  # every process at the same step: the same decision
                self._agree_on_stop()
            if self.stop_requested:
                state.epoch_seconds += train_seconds
                self._call("on_interrupt")
                raise TrainingInterrupted(f"stopped at epoch {state.epoch + 1}, batch "
                                         f"{state.batch_in_epoch} (step {state.step} in all)")
            logs = {"epoch": state.epoch + 1, "train_loss": train_loss}
            logs.update(self.evaluate(val, prefix="val_"))
            logs["lr"] = self.optimizer.param_groups[0]["lr"]
            state.epoch += 1
            state.batch_in_epoch = 0
            self.monitor.update(state, logs)
            if self.scheduler_interval == "epoch":
                self.scheduler.step(logs[self.monitor.name])
            logs["train_seconds"] = state.epoch_seconds + train_seconds
            logs["epoch_seconds"] = time.perf_counter() - epoch_start
            state.epoch_seconds = 0.0
            state.history.append(logs)
            self._call("on_epoch_end", logs)
        if self.dist is not None:  # the reason of the process that stopped (a time budget)
            state.stop_reason = next((r for r in self.dist.all_objects(state.stop_reason) if r), None)
        self._call("on_fit_end")
        return state

    def _train_epoch(self, train: Batches) -> tuple[float, float]:
        """One pass over the training batches: (mean loss, seconds spent in the steps)."""
        state = self.state
        batch_callbacks = [cb for cb in self.callbacks if cb.batch_hooks]
        if state.batch_in_epoch == 0:
            self.epoch_loss.zero_()  # accumulates on the device: no sync per step
        _synchronize(self.device)
        start = time.perf_counter()
        for xb, yb in train.epoch(state.epoch, start=state.batch_in_epoch):
            loss = self.step(xb, yb)
            self.epoch_loss += loss * len(yb)
            state.step += 1
            state.batch_in_epoch += 1
            for cb in batch_callbacks:
                cb.on_batch_end(self, state)
            if self.dist is not None:
                if state.step % STOP_SYNC == 0 and self._agree_on_stop():
                    break
            elif self.stop_requested or state.should_stop:
                break
        _synchronize(self.device)
        seconds = time.perf_counter() - start
        n_seen = min(state.batch_in_epoch * train.batch_size, train.n_used)  # over all processes
        if self.dist is not None:  # the sum over every process's rows
            return (self.dist.summed(self.epoch_loss) / max(n_seen, 1)).item(), seconds
        return (self.epoch_loss / max(n_seen, 1)).item(), seconds

    def step(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """One training step on a batch: augment (images), forward, loss, backward, clip, optimizer
        step → the batch's mean loss, detached, on the device (no host sync). The LR range test
        (training/lr_range.py) takes its steps here too."""
        if self.augment is not None:
            xb = self.augment(xb)
        with self._autocast():
            loss = self.loss_fn(self.forward(xb), yb)
        self._step(loss)
        return loss.detach()

    def _agree_on_stop(self) -> bool:
        """Under torchrun: a stop any process asked for is every process's (collective)."""
        self.stop_requested, self.state.should_stop = self.dist.any(self.stop_requested,
                                                                    self.state.should_stop)
        return self.stop_requested or self.state.should_stop

    def _step(self, loss: torch.Tensor) -> None:
        """Backward, clip, optimizer step (through the GradScaler for fp16), scheduler step."""
        opt = self.optimizer
        opt.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            if self.clip_norm:
                nn.utils.clip_grad_norm_(self._params, self.clip_norm, foreach=True)
            opt.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(opt)
            if self.clip_norm:
                nn.utils.clip_grad_norm_(self._params, self.clip_norm, foreach=True)
            self.scaler.step(opt)
            self.scaler.update()
        if self.scheduler_interval == "step":
            self.scheduler.step()

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    # ------------------------------------------------------------- evaluate
    @torch.no_grad()
    def predict(self, data: Batches) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs (float32) and targets for every row of a split, in order, on the device.
        Under torchrun each process runs its block of rows, and the blocks are gathered: every
        process gets every row once, in order (training/distributed.py's gather_rows)."""
        self.model.eval()
        forward = self.forward if self.dist is None else self.model
        if self.dist is not None:  # the same running statistics in every process: rank 0's
            self.dist.sync_buffers(self.model)
        outputs, targets = [], []
        for xb, yb in data.eval_batches():
            with self._autocast():
                outputs.append(forward(xb).float())
            targets.append(yb)
        out, target = torch.cat(outputs), torch.cat(targets)
        if self.dist is None:
            return out, target
        return self.dist.gather_rows(out, data.n), self.dist.gather_rows(target, data.n)

    def evaluate(self, data: Batches, prefix: str = "") -> dict[str, float]:
        """Loss and metrics over a whole split (never averaged over batches)."""
        out, target = self.predict(data)
        results = {"loss": self.loss_fn(out, target)}
        if self.metrics is not None:
            results.update(self.metrics(out, target))
        return {prefix + k: float(v) for k, v in results.items()}

    # ------------------------------------------------- state for checkpoints
    def checkpoint_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizer, scheduler, scaler, the loop's
        state, every callback's state, every random generator and the epoch's running loss; under
        torchrun also every process's generators and running loss (a collective)."""
        ckpt = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "state": self.state.state_dict(),
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks},
            "rng": capture_rng(),
            "epoch_loss": self.epoch_loss,
        }
        if self.dist is not None:
            ckpt.update(self.dist.rank_states(ckpt["rng"], self.epoch_loss))
        return ckpt

    def load_checkpoint_state(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.state.load_state_dict(ckpt["state"])
        for cb in self.callbacks:
            cb.load_state_dict(ckpt["callbacks"].get(type(cb).__name__, {}))
        own = ckpt if self.dist is None else self.dist.own_state(ckpt)
        self.epoch_loss = own["epoch_loss"].to(self.device)
        restore_rng(own["rng"])

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, self.state, *args)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
