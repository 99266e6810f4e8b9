"""`deepfit.benchmark`: how fast a model trains and predicts, how much memory it takes, how big
it is, and how many FLOPs a sample costs, on this machine.

    benchmark(model="resnet50", batch_size=64, device="cuda")   a registered model, on synthetic
                                                                 input of its natural shape
    benchmark(model="mlp", source="breast_cancer")               the same on real rows
    benchmark(run="runs/x")                                      a trained run's model, with its
                                                                 real preprocessing; writes
                                                                 runs/x/benchmark.json

Every timing follows warm-up and is repeated; a result is the median with its spread (none when
only one repeat fits). A probe first times one training step (after a warm-up step), its
validation pass (a forward at the batch size) and a forward at batch 1; the plan (repeats × steps) is then fitted to `max_seconds`
(bench_plan.py: 180 s on a CPU, 600 s on CUDA by default), said before the long part, and
written with the results ("plan": requested and done, estimated seconds, reduced or not):
    train_samples_per_s  samples per second of deepfit's own Trainer (forward, loss, backward,
                         gradient clipping, AdamW step), per repeat (one epoch of `steps` steps)
    latency_ms           per forward call in eval mode without gradients, at batch 1 and at the
                         batch size: p50 / p95 / p99 over every timed call (repeats × steps
                         calls; p95 and p99 none from a single call)
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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as st_save
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deepfit.core.io import default_run_dir, write_json
from deepfit.core.notes import logger
from deepfit.data.batches import InMemoryBatches
from deepfit.errors import SettingsError
from deepfit.lifecycle.fit import resolve_device
from deepfit.models import InputSpec, OutputSpec, create
from deepfit.models.quantized import is_quantized, quantized_state
from deepfit.tools.benchmark.inputs import Workload, model_workload, run_workload
from deepfit.tools.benchmark.memory import MB, peak_memory, reset_peak_memory
from deepfit.tools.benchmark.plan import PROBE_REPEAT, Plan, Ticker, fit_plan, max_seconds_for
from deepfit.tools.benchmark.timing import (
    autocast,
    make_trainer,
    probe,
    time_latency,
    time_predict_latency,
    time_training,
)
from deepfit.training.trainer import PRECISIONS, Trainer

DEVICES = ("auto", "cpu", "cuda", "mps")
QUICK = {"batch_size": 2, "repeats": 2, "steps": 1, "warmup": 1}  # tests; tiny shapes too


@dataclass
class Spread:
    """The median of repeated measurements and how far they ranged (min and max None from a
    single measurement: no spread, rather than a spread of 0)."""

    median: float
    min: float | None
    max: float | None
    values: list[float]

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        one = len(values) < 2
        return cls(float(np.median(values)), None if one else float(min(values)),
                   None if one else float(max(values)), list(values))


@dataclass
class Latency:
    """Milliseconds per forward call, over every timed call (p95 and p99 None from one call)."""

    p50: float
    p95: float | None
    p99: float | None
    mean: float
    calls: int

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ms = np.asarray(seconds) * 1e3
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        one = len(ms) < 2
        return cls(float(p50), None if one else float(p95), None if one else float(p99),
                   float(ms.mean()), len(ms))


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
    plan: dict[str, Any] = field(default_factory=dict)  # bench_plan.Plan: requested and done
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
              seed: int = 0, threads: int | None = None, max_seconds: float | None = None,
              progress: bool | None = None, on_plan: Callable[[Plan], None] | None = None,
              **settings: Any) -> BenchmarkResult:
    """Measure model `model` (a registry name, with its `settings`) or the model of the trained
    run `run`. `quick`: the fewest steps and tiny default shapes, for tests. `out`: a directory
    to write benchmark.json (a run's is the run directory) and the --profile-memory trace to.
    `threads`: CPU threads for torch during the benchmark (default: as they are). The caller's
    thread count and random state are left as they were.
    `max_seconds`: the wall-clock budget of the whole benchmark (default 180 on a CPU, 600 on
    CUDA; `math.inf`: none); repeats and steps are reduced to fit it, and said so
    (result.plan). `on_plan(plan)` is called with the plan before the long part (default: its
    lines logged on the "deepfit" logger); `progress`: a progress bar on stdout (default: when
    stdout is a terminal). Raises SettingsError for a bad setting or a missing device."""
    started = time.perf_counter()
    asked = {"batch_size": batch_size or 64, "repeats": repeats or 5, "steps": steps or 10,
             "warmup": 1 if warmup is None else warmup}
    if quick:
        asked = {k: v if given is not None else QUICK[k] for (k, v), given in
                 zip(asked.items(), (batch_size, repeats, steps, warmup))}
    _check_plan(asked, precision, device)
    dev = resolve_device(device)  # a named error where the device is not there
    budget = max_seconds_for(max_seconds, dev.type)
    if precision == "fp16" and dev.type != "cuda":
        raise SettingsError("fp16 needs a CUDA device; use bf16 on the CPU")
    if run is not None and model is not None:
        raise SettingsError("benchmark measures a run's model or a named model, not both")
    if run is None and model is None:
        raise SettingsError("benchmark needs a model name (--model NAME) or a RUN_DIR")
    if model is not None and not isinstance(model, str):
        raise SettingsError(f"model is a registered model's name, not {type(model).__name__} "
                            "(a run directory is run=)")
    n_rows = asked["batch_size"] * asked["steps"]
    with _isolated(threads, seed, dev):
        if run is not None:
            work = run_workload(Path(run), source, n_rows, seed)
        else:
            work = model_workload(model, settings, source, target, input_shape, task, classes,
                                  n_rows, quick, seed)
        when = Budget(started, budget, on_plan or _log_plan, Ticker(progress))
        result = _measure(work, asked, dev, precision, compile, profile_memory, when)
    return _save(result, work, run, out, profile_memory)


@dataclass
class Budget:
    """When the benchmark started, its budget, whom to tell the plan, the progress display."""

    started: float
    max_seconds: float
    on_plan: Callable[[Plan], None]
    ticker: Ticker


def _log_plan(plan: Plan) -> None:
    for line in plan.lines():
        logger.info("benchmark: %s", line)


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
def _measure(work: Workload, asked: dict[str, int], device: torch.device, precision: str,
             compile: bool, profile_memory: bool, when: Budget) -> BenchmarkResult:
    model, B = work.model, asked["batch_size"]
    weights_mb = saved_size(model) / MB
    train_model = copy.deepcopy(model) if work.predictor is not None else model
    if is_quantized(model):  # int8 layers neither train nor count as parameters or FLOPs:
        arch = work.predictor.architecture  # the float architecture's are given, as for its steps
        train_model = create(arch["name"], InputSpec.from_dict(arch["input_spec"]),
                             OutputSpec(**arch["output_spec"]), **arch["settings"])
    params, trainable = count_params(train_model)
    flops = flops_per_sample(train_model, work.X[:1])
    before = reset_peak_memory(device)
    trainer = make_trainer(train_model, work, device, precision, compile)
    if work.predictor is not None:
        work.predictor.model.to(device)
        work.predictor.device = device
    costs, probe_rate = probe(trainer, work, B, profile_memory)
    plan = fit_plan(f"{work.name}, batch {B}, {device}", costs, asked, when.max_seconds,
                    time.perf_counter() - when.started)
    when.on_plan(plan)
    calls, sizes = plan.repeats * plan.steps, list(dict.fromkeys((1, B)))
    with when.ticker as ticker:
        reuse = (plan.warmup, plan.repeats, plan.steps) == PROBE_REPEAT
        train_rate = Spread.of([probe_rate] if reuse else time_training(
            trainer, work, B, plan.warmup, plan.repeats, plan.steps, ticker))
        latency = {f"batch_{b}": Latency.of(time_latency(trainer, work.X[:b].to(device), calls,
                                                         ticker)) for b in sizes}
        predict_latency = {f"batch_{b}": Latency.of(time_predict_latency(work, b, calls, device,
                                                                         ticker))
                           for b in sizes if work.predictor is not None}
    peak, kind = peak_memory(device)
    result = BenchmarkResult(
        model=work.name, settings=work.settings, data=work.data, modality=work.input_spec.modality,
        input_shape=list(work.X.shape[1:]), task=work.output_spec.task,
        n_outputs=work.output_spec.n_outputs, batch_size=B, device=str(device),
        precision=precision, compiled=compile, repeats=plan.repeats, steps=plan.steps,
        params=params, trainable_params=trainable, weights_mb=weights_mb, flops_per_sample=flops,
        train_samples_per_s=train_rate, latency_ms=latency, peak_memory_mb=peak,
        peak_memory_kind=kind, memory_before_mb=before, machine=machine(device),
        predict_latency_ms=predict_latency)
    if profile_memory:
        result.memory_top = _profile(trainer, work, B, device)
    plan.seconds = time.perf_counter() - when.started
    result.plan = plan.to_dict()
    return result


def count_params(model: nn.Module) -> tuple[int, int]:
    """(parameters, trainable parameters); a tensor shared by two layers counts once."""
    params = list(model.parameters())  # each shared tensor once
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def saved_size(model: nn.Module) -> int:
    """Bytes of the model's state dict (buffers included) as the safetensors file a run writes;
    a tensor shared by two layers is stored once."""
    if is_quantized(model):  # int8 values, scales and zero points, as the run saves them
        return len(st_save(quantized_state(model)))
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
        with torch.no_grad(), autocast(device, trainer.precision):
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
