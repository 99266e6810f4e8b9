"""The timed parts of `deepfit.benchmark`: the probe that prices a step, training throughput
through deepfit's Trainer, and latency per forward call (model alone, or a run's raw rows
through its preprocessing). Every timing is synchronised on CUDA; progress is ticked outside
the timed code."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from deepfit.data.batches import InMemoryBatches
from deepfit.tools.benchmark.inputs import Workload
from deepfit.tools.benchmark.plan import Costs, EpochTicks, Ticker
from deepfit.training.losses import DEFAULT_LOSS, create_loss
from deepfit.training.optim import create_optimizer
from deepfit.training.trainer import PRECISIONS, Trainer


def make_trainer(model: nn.Module, work: Workload, device: torch.device, precision: str,
                 compile: bool) -> Trainer:
    """deepfit's Trainer with its defaults: the task's loss, AdamW, clipping at norm 1."""
    from deepfit.config import TrainConfig

    model = model.to(device)
    loss_fn = create_loss(DEFAULT_LOSS[work.output_spec.task])
    optimizer = create_optimizer(model, TrainConfig(), device)
    return Trainer(model, loss_fn, optimizer, epochs=0, device=device, precision=precision,
                   compile=compile)


def probe(trainer: Trainer, work: Workload, B: int, profile_memory: bool) -> tuple[Costs, float]:
    """Two one-step epochs (the first a warm-up: allocation, kernel choice, compilation), the
    second timed: its step, and its validation pass (the epoch's other seconds: one forward at
    the batch size, which prices a latency call there too); then a forward at batch 1 (after an
    untimed one) and a run's predict call per batch size. A large model on a CPU spends most of
    its probe in the two steps: nothing is timed twice that need not be. Returns the costs and
    the samples per second of the timed step."""
    train = _batches(work, B, 1, trainer.device)
    val = InMemoryBatches(work.X[:B], work.y[:B], B, shuffle=False, device=trainer.device)
    trainer.epochs += 2
    last = trainer.fit(train, val).history[-1]
    step, validation = last["train_seconds"], max(last["epoch_seconds"] - last["train_seconds"], 0.0)
    one = _timed_calls(_forward_call(trainer, work.X[:1].to(trainer.device)), 2, trainer.device)
    forward = {1: one[-1]} | {B: validation}
    predict = {}
    if work.predictor is not None:
        predict = {b: _timed_calls(_predict_call(work, b), 1, trainer.device)[0]
                   for b in dict.fromkeys((1, B))}
    profile = 2 * (2 * step + validation + forward[B]) if profile_memory else 0.0  # profiler: ~2×
    return Costs(step, validation, forward, predict, profile), train.n_used / max(step, 1e-9)


def time_training(trainer: Trainer, work: Workload, B: int, warmup: int, repeats: int,
                     steps: int, ticker: Ticker) -> list[float]:
    """Samples per second of each timed epoch (`steps` steps), after `warmup` epochs. The
    Trainer times the steps alone, synchronised; the validation pass after each is not timed."""
    train = _batches(work, B, steps, trainer.device)
    val = InMemoryBatches(work.X[:B], work.y[:B], B, shuffle=False, device=trainer.device)
    first = len(trainer.state.history) + warmup
    ticks = EpochTicks(ticker)
    trainer.callbacks.append(ticks)
    ticker.phase(f"training: {warmup} warm-up + {repeats} timed repeats", warmup + repeats)
    try:
        trainer.epochs += warmup + repeats
        history = trainer.fit(train, val).history[first:]
    finally:
        trainer.callbacks.remove(ticks)
    return [train.n_used / max(h["train_seconds"], 1e-9) for h in history]


def time_latency(trainer: Trainer, x: torch.Tensor, calls: int, ticker: Ticker) -> list[float]:
    """Seconds per forward call of the (compiled, with --compile) model in eval mode, after an
    untimed one (training ran since the probe's)."""
    ticker.phase(f"latency at batch {len(x)}", calls)
    call = _forward_call(trainer, x)
    _timed_calls(call, 1, trainer.device)
    return _timed_calls(call, calls, trainer.device, ticker)


def time_predict_latency(work: Workload, b: int, calls: int, device: torch.device,
                    ticker: Ticker) -> list[float]:
    """Seconds per call of raw rows through the run's preprocessing and model
    (Predictor.outputs, in float32 as deepfit.predict runs)."""
    ticker.phase(f"predict latency at batch {b}", calls)
    call = _predict_call(work, b)
    _timed_calls(call, 1, device)
    return _timed_calls(call, calls, device, ticker)


def autocast(device: torch.device, precision: str) -> Any:
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def _forward_call(trainer: Trainer, x: torch.Tensor) -> Any:
    trainer.model.eval()  # once, outside the timed calls

    def call() -> None:
        with torch.no_grad(), autocast(trainer.device, trainer.precision):
            trainer.forward(x)
    return call


def _predict_call(work: Workload, b: int) -> Any:
    rows = work.take_raw(b)
    return lambda: work.predictor.outputs(rows)


def _timed_calls(call: Any, calls: int, device: torch.device,
                 ticker: Ticker | None = None) -> list[float]:
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        sync(device)
        seconds.append(time.perf_counter() - start)
        if ticker is not None:
            ticker.tick()
    return seconds


def _batches(work: Workload, B: int, steps: int, device: torch.device) -> InMemoryBatches:
    n = B * steps
    return InMemoryBatches(work.X[:n], work.y[:n], B, seed=0, device=device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
