"""How many CPU threads torch uses for a run: chosen for the work, not inherited.

torch starts one OpenMP thread per core. A step made of many small operations (an MLP on a
table, a GRU's per-time-step matrix products) gains nothing from a second thread: splitting an
op of a few MFLOP costs more in hand-offs than it saves, and when the cores are shared with other
programs the threads wait on each other and a run can be ten times slower (benchmarks/threads.py
measures it). Large operations (convolutions on images)
split well and gain from every core, quiet or loaded. So the rule, measured, not guessed:

    the mean FLOPs of one operation of the model's forward pass (a batch of `batch_size`)
      < OP_FLOPS_FOR_THREADS  → 1 thread
      ≥ OP_FLOPS_FOR_THREADS  → every core torch would use by default

The forward pass is run on the `meta` device (shapes only: no memory, no arithmetic), with the
FLOP formulas of `torch.utils.flop_counter`, so choosing costs milliseconds. The `deepfit` command
also sets OMP_WAIT_POLICY=PASSIVE before torch is imported, so waiting threads sleep instead of
spinning on shared cores (cli/app.py's `main`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
from torch import nn

from deepfit.config import WAIT_POLICY

OP_FLOPS_FOR_THREADS = 5e7  # mean FLOPs of one op (forward, one batch) from which threads pay

_TORCH_DEFAULT = torch.get_num_threads()  # before deepfit changed anything in this process


@dataclass(frozen=True)
class ThreadChoice:
    """The intra-op thread count of a run and why (said in the notes, saved in config.json)."""

    threads: int
    reason: str
    op_flops: float | None = None  # mean FLOPs of one forward op; None when not measured

    def note(self) -> str:
        return f"{self.threads} CPU thread{'s' if self.threads > 1 else ''}: {self.reason}"


def default_threads() -> int:
    """The threads torch would use here: its own default when this process started, bounded
    by the cores this process may run on (os.sched_getaffinity, where the OS has it)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        allowed = os.cpu_count() or 1
    return max(1, min(_TORCH_DEFAULT, allowed))


def mean_op_flops(model: nn.Module, example: torch.Tensor) -> float | None:
    """Mean FLOPs per FLOP-counted operation (matmul, convolution, attention…) of `model`'s
    forward pass on `example` ([batch, …]), run on the meta device: shapes only, milliseconds.
    None when the model cannot run there (an op without a meta kernel, a data-dependent step)
    or has no counted operation."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class _Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.flops: list[float] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.flops.append(float(formula(*args, **kwargs, out_val=out)))
            return out

    try:
        meta = _meta_copy(model)
        counter = _Count()
        with torch.no_grad(), counter:
            meta(example.to("meta"))
    except Exception:
        return None
    return sum(counter.flops) / len(counter.flops) if counter.flops else None


def _meta_copy(model: nn.Module) -> nn.Module:
    """`model` on the meta device: itself when it is there already, else a copy (the model
    given is untouched)."""
    import copy

    on_meta = all(p.device.type == "meta" for p in model.parameters())
    return (model if on_meta else copy.deepcopy(model).to("meta")).eval()


def choose_threads(model: nn.Module | None, example: torch.Tensor | None, device: torch.device,
                   requested: int | None = None) -> ThreadChoice:
    """The intra-op thread count for training `model` on batches like `example` ([batch, …],
    any device) on `device`: `requested` when given, else the module docstring's rule (no
    `model`: one that could not be built to be sized, torch's default). On a
    GPU the CPU threads only feed it: torch's default count is kept."""
    if requested is not None:
        return ThreadChoice(requested, "as asked")
    cores = default_threads()
    if device.type != "cpu":
        return ThreadChoice(cores, f"torch's default: the model runs on {device}")
    if cores == 1:
        return ThreadChoice(1, "one core available")
    flops = None if model is None else mean_op_flops(model, example)
    if flops is None:
        return ThreadChoice(cores, "torch's default: the model's operations could not be sized")
    size = f"its operations average {flops / 1e6:.3g} MFLOP on a batch of {len(example)}"
    if flops < OP_FLOPS_FOR_THREADS:
        return ThreadChoice(1, f"{size}, too small to gain from splitting (< "
                               f"{OP_FLOPS_FOR_THREADS / 1e6:.0f} MFLOP)", flops)
    return ThreadChoice(cores, f"{size}, large enough to split across the cores",
                            flops)


def apply_threads(choice: ThreadChoice) -> None:
    """Set torch's intra-op threads to `choice.threads` and, once per process (torch allows no
    more), its inter-op threads to 1: deepfit runs no parallel graph branches."""
    torch.set_num_threads(choice.threads)
    with contextlib.suppress(RuntimeError):  # set already, or parallel work began: torch refuses
        torch.set_num_interop_threads(1)


__all__ = ["OP_FLOPS_FOR_THREADS", "WAIT_POLICY", "ThreadChoice", "apply_threads",
           "choose_threads", "default_threads", "mean_op_flops"]
