"""`deepfit.benchmark`: how fast a model trains and predicts, how much memory it takes, how big
it is, and how many FLOPs a sample costs, on this machine.

    benchmark(model="resnet50", batch_size=64, device="cuda")   a registered model, on synthetic
                                                                 input of its natural shape
    benchmark(model="mlp", source="breast_cancer")               the same on real rows
    benchmark(run="runs/x")                                      a trained run's model, with its
                                                                 real preprocessing; writes
                                                                 runs/x/benchmark.json

Every timing follows warm-up and is repeated; a result is the median with its spread:
    train_samples_per_s  samples per second of deepfit's own Trainer (forward, loss, backward,
                         gradient clipping, AdamW step), per repeat (one epoch of `steps` steps)
    latency_ms           per forward call in eval mode without gradients, at batch 1 and at the
                         batch size: p50 / p95 / p99 over every timed call
    peak_memory_mb       CUDA: torch.cuda.max_memory_allocated; CPU: the process's peak resident
                         set (VmHWM, reset before measuring; it includes Python and torch themselves)
    params               parameters (each shared tensor once), trainable_params those with grad
    weights_mb           bytes of the state dict saved as safetensors (the file a run writes)
    flops_per_sample     forward only, one sample, in eval mode, counted by
                         torch.utils.flop_counter on a CPU copy (a multiply-add is 2 FLOPs)
MB are 2**20 bytes. Nothing here is per model: every model comes from the registry.
"""

from __future__ import annotations

import contextlib
import copy
import os
import platform
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as st_save
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deepfit.api import resolve_device
from deepfit.bench_inputs import Workload, model_workload, run_workload
from deepfit.bench_memory import MB, peak_memory, reset_peak_memory
from deepfit.data.batches import InMemoryBatches
from deepfit.errors import SettingsError
from deepfit.io import default_run_dir, write_json
from deepfit.train.losses import DEFAULT_LOSS, create_loss
from deepfit.train.optim import create_optimizer
from deepfit.train.trainer import PRECISIONS, Trainer

DEVICES = ("auto", "cpu", "cuda", "mps")
QUICK = {"batch_size": 2, "repeats": 2, "steps": 1, "warmup": 1}  # tests; tiny shapes too


@dataclass
class Spread:
    """The median of repeated measurements and how far they ranged."""

    median: float
    min: float
    max: float
    values: list[float]

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(float(np.median(values)), float(min(values)), float(max(values)), list(values))


@dataclass
class Latency:
    """Milliseconds per forward call, over every timed call."""

    p50: float
    p95: float
    p99: float
    mean: float
    calls: int

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ms = np.asarray(seconds) * 1e3
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        return cls(float(p50), float(p95), float(p99), float(ms.mean()), len(ms))


@dataclass
class BenchmarkResult:
    model: str
    settings: dict[str, Any]
    data: str  # "synthetic", or the source the rows came from
    modality: str
    input_shape: list[int]  # one sample, beyond the batch
    task: str
    n_outputs: int
    batch_size: int
    device: str
    precision: str
    compiled: bool
    repeats: int
    steps: int  # optimizer steps (and forward calls) per repeat
    params: int
    trainable_params: int
    weights_mb: float
    flops_per_sample: int
    train_samples_per_s: Spread
    latency_ms: dict[str, Latency]  # "batch_1", "batch_<batch_size>"
    peak_memory_mb: float
    peak_memory_kind: str  # "cuda_max_allocated", "rss_peak" or "rss_peak_since_start"
    memory_before_mb: float  # in use when the peak was reset (CPU: Python and torch included)
    machine: dict[str, Any]
    # a run's model only: raw rows → its preprocessing → the model, per call
    predict_latency_ms: dict[str, Latency] = field(default_factory=dict)
    memory_trace: str | None = None  # --profile-memory: the torch.profiler trace
    memory_top: list[dict[str, Any]] = field(default_factory=list)
    saved_to: str | None = None  # the benchmark.json written

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def benchmark(model: str | None = None, *, run: str | Path | None = None, source: Any = None,
              target: str | None = None, batch_size: int | None = None, device: str = "auto",
              precision: str = "32", input_shape: tuple[int, ...] | None = None,
              compile: bool = False, repeats: int | None = None, steps: int | None = None,
              warmup: int | None = None, task: str = "classification", classes: int = 10,
              quick: bool = False, profile_memory: bool = False, out: str | Path | None = None,
              seed: int = 0, threads: int | None = None, **settings: Any) -> BenchmarkResult:
    """Measure model `model` (a registry name, with its `settings`) or the model of the trained
    run `run`. `quick`: the fewest steps and tiny default shapes, for tests. `out`: a directory
    to write benchmark.json (a run's is the run directory) and the --profile-memory trace to.
    `threads`: CPU threads for torch during the benchmark (default: as they are). The caller's
    thread count and random state are left as they were."""
    plan = {"batch_size": batch_size or 64, "repeats": repeats or 5, "steps": steps or 10,
            "warmup": 1 if warmup is None else warmup}
    if quick:
        plan = {k: v if given is not None else QUICK[k] for (k, v), given in
                zip(plan.items(), (batch_size, repeats, steps, warmup))}
    _check_plan(plan, precision, device)
    dev = resolve_device(device)  # a named error where the device is not there
    if precision == "fp16" and dev.type != "cuda":
        raise SettingsError("fp16 needs a CUDA device; use bf16 on the CPU")
    if run is not None and model is not None:
        raise SettingsError("benchmark measures a run's model or a named model, not both")
    if run is None and model is None:
        raise SettingsError("benchmark needs a model name (--model NAME) or a RUN_DIR")
    n_rows = plan["batch_size"] * plan["steps"]
    with _isolated(threads, seed, dev):
        if run is not None:
            work = run_workload(Path(run), source, n_rows, seed)
        else:
            work = model_workload(model, settings, source, target, input_shape, task, classes,
                                  n_rows, quick, seed)
        result = _measure(work, plan, dev, precision, compile, profile_memory)
    return _save(result, work, run, out, profile_memory)


@contextlib.contextmanager
def _isolated(threads: int | None, seed: int, device: torch.device) -> Iterator[None]:
    """`threads` torch threads and a seeded random state, both put back afterwards."""
    if threads is not None and threads < 1:
        raise SettingsError(f"threads must be at least 1, not {threads}")
    before = torch.get_num_threads()
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        torch.set_num_threads(threads or before)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def _check_plan(plan: dict[str, int], precision: str, device: str) -> None:
    if plan["batch_size"] < 2:
        raise SettingsError("batch size must be at least 2: training a model with BatchNorm "
                            "needs more than one sample (batch-1 latency is measured anyway)")
    for key in ("repeats", "steps"):
        if plan[key] < 1:
            raise SettingsError(f"{key} must be at least 1, not {plan[key]}")
    if plan["warmup"] < 0:
        raise SettingsError(f"warmup must be 0 or more, not {plan['warmup']}")
    if precision not in PRECISIONS:
        raise SettingsError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if device not in DEVICES:
        raise SettingsError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")


# --------------------------------------------------------------------------- measuring
def _measure(work: Workload, plan: dict[str, int], device: torch.device, precision: str,
             compile: bool, profile_memory: bool) -> BenchmarkResult:
    model, B = work.model, plan["batch_size"]
    params, trainable = count_params(model)
    weights_mb = saved_size(model) / MB
    flops = flops_per_sample(model, work.X[:1])
    train_model = copy.deepcopy(model) if work.predictor is not None else model
    before = reset_peak_memory(device)
    trainer = _trainer(train_model, work, device, precision, compile)
    train_rate = _train_throughput(trainer, work, plan)
    latency = {f"batch_{b}": _latency(trainer, work.X[:b].to(device), plan)
               for b in dict.fromkeys((1, B))}
    predict_latency = {}
    if work.predictor is not None:
        work.predictor.model.to(device)
        work.predictor.device = device
        predict_latency = {f"batch_{b}": _predict_latency(work, b, plan, device)
                           for b in dict.fromkeys((1, B))}
    peak, kind = peak_memory(device)
    result = BenchmarkResult(
        model=work.name, settings=work.settings, data=work.data, modality=work.input_spec.modality,
        input_shape=list(work.X.shape[1:]), task=work.output_spec.task,
        n_outputs=work.output_spec.n_outputs, batch_size=B, device=str(device),
        precision=precision, compiled=compile, repeats=plan["repeats"], steps=plan["steps"],
        params=params, trainable_params=trainable, weights_mb=weights_mb, flops_per_sample=flops,
        train_samples_per_s=train_rate, latency_ms=latency, peak_memory_mb=peak,
        peak_memory_kind=kind, memory_before_mb=before, machine=machine(device),
        predict_latency_ms=predict_latency)
    if profile_memory:
        result.memory_top = _profile(trainer, work, B, device)
    return result


def count_params(model: nn.Module) -> tuple[int, int]:
    """(parameters, trainable parameters); a tensor shared by two layers counts once."""
    params = list(model.parameters())  # each shared tensor once
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def saved_size(model: nn.Module) -> int:
    """Bytes of the model's state dict (buffers included) as the safetensors file a run writes;
    a tensor shared by two layers is stored once."""
    state = {}
    seen: set[int] = set()
    for key, value in model.state_dict(keep_vars=True).items():
        if id(value) not in seen:  # safetensors refuses tensors that share memory
            seen.add(id(value))
            state[key] = value.detach().contiguous().cpu()
    return len(st_save(state))


def flops_per_sample(model: nn.Module, sample: torch.Tensor) -> int:
    """FLOPs of one forward pass on `sample` ([1, ...]), in eval mode, on a CPU copy in float32.
    The counter knows matrix products and convolutions, not fused kernels, so it counts with
    the plain ones: gradients on (no fused transformer fast path), oneDNN off (an LSTM's
    matmuls), attention by the math path; a multiply-add is 2 FLOPs."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    cpu = copy.deepcopy(model).cpu().float().eval()
    counter = FlopCounterMode(display=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # oneDNN's flags warn about Intel GPUs
        with torch.backends.mkldnn.flags(enabled=False), sdpa_kernel(SDPBackend.MATH), counter:
            cpu(sample.cpu().float() if sample.is_floating_point() else sample.cpu())
    return int(counter.get_total_flops())


def _trainer(model: nn.Module, work: Workload, device: torch.device, precision: str,
             compile: bool) -> Trainer:
    """deepfit's Trainer with its defaults: the task's loss, AdamW, clipping at norm 1."""
    from deepfit.config import TrainConfig

    model = model.to(device)
    loss_fn = create_loss(DEFAULT_LOSS[work.output_spec.task])
    optimizer = create_optimizer(model, TrainConfig(), device)
    return Trainer(model, loss_fn, optimizer, epochs=0, device=device, precision=precision,
                   compile=compile)


def _train_throughput(trainer: Trainer, work: Workload, plan: dict[str, int]) -> Spread:
    """Samples per second of each timed epoch (`steps` steps), after `warmup` epochs. The
    Trainer times the steps alone, synchronised; the validation pass after each is not timed."""
    B = plan["batch_size"]
    n = B * plan["steps"]
    train = InMemoryBatches(work.X[:n], work.y[:n], B, seed=0, device=trainer.device)
    val = InMemoryBatches(work.X[:B], work.y[:B], B, shuffle=False, device=trainer.device)
    trainer.epochs = plan["warmup"] + plan["repeats"]
    history = trainer.fit(train, val).history[plan["warmup"]:]
    return Spread.of([train.n_used / max(h["train_seconds"], 1e-9) for h in history])


def _autocast(device: torch.device, precision: str) -> Any:
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


@torch.no_grad()
def _latency(trainer: Trainer, x: torch.Tensor, plan: dict[str, int]) -> Latency:
    """Per forward call of the (compiled, with --compile) model in eval mode, synchronised."""
    trainer.model.eval()
    warm, calls = plan["steps"] * plan["warmup"], plan["steps"] * plan["repeats"]
    seconds = []
    for i in range(warm + calls):
        start = time.perf_counter()
        with _autocast(trainer.device, trainer.precision):
            trainer.forward(x)
        _sync(trainer.device)
        if i >= warm:
            seconds.append(time.perf_counter() - start)
    return Latency.of(seconds)


def _predict_latency(work: Workload, b: int, plan: dict[str, int], device: torch.device) -> Latency:
    """Raw rows through the run's preprocessing and model (Predictor.outputs, in float32 as
    deepfit.predict runs), per call."""
    rows = work.take_raw(b)
    warm, calls = plan["steps"] * plan["warmup"], plan["steps"] * plan["repeats"]
    seconds = []
    for i in range(warm + calls):
        start = time.perf_counter()
        work.predictor.outputs(rows)
        _sync(device)
        if i >= warm:
            seconds.append(time.perf_counter() - start)
    return Latency.of(seconds)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- memory
def _profile(trainer: Trainer, work: Workload, B: int, device: torch.device) -> list[dict]:
    """One more training epoch and a forward at the batch size under torch.profiler; the
    profiler is kept in `work.trace` (for _save); returns the ten operators that allocated
    the most memory themselves."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    n = B * 2
    train = InMemoryBatches(work.X[:n], work.y[:n], B, seed=1, device=device)
    val = InMemoryBatches(work.X[:B], work.y[:B], B, shuffle=False, device=device)
    trainer.epochs += 1
    with profile(activities=activities, profile_memory=True, record_shapes=True) as prof:
        trainer.fit(train, val)
        with torch.no_grad(), _autocast(device, trainer.precision):
            trainer.forward(work.X[:B].to(device))
    work.trace = prof
    key = "self_device_memory_usage" if device.type == "cuda" else "self_cpu_memory_usage"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)[:10]
    return [{"operator": e.key, "self_memory_mb": getattr(e, key) / MB,
             "memory_mb": getattr(e, key.replace("self_", "")) / MB, "calls": e.count}
            for e in events]


def machine(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    info = {"system": platform.system(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "gpu": None}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# ------------------------------------------------------------------------------ saving
def _save(result: BenchmarkResult, work: Workload, run: Path | str | None, out: Any,
          profile_memory: bool) -> BenchmarkResult:
    """benchmark.json into the run (or `out`); the memory trace beside it (a new
    runs/benchmark-<model>-<time> directory when neither is given)."""
    folder = Path(run) if run is not None else Path(out) if out is not None else None
    if profile_memory and folder is None:
        folder = default_run_dir(f"benchmark-{work.name.replace(':', '-')}")
    if folder is None:
        return result
    folder.mkdir(parents=True, exist_ok=True)
    if profile_memory:
        trace = folder / "memory_trace.json"
        tmp = folder / ".memory_trace.json.tmp"
        try:
            work.trace.export_chrome_trace(str(tmp))
            os.replace(tmp, trace)
        finally:
            tmp.unlink(missing_ok=True)
        result.memory_trace = str(trace)
    result.saved_to = str(folder / "benchmark.json")
    write_json(folder / "benchmark.json", result.to_dict())
    return result
