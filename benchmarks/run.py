"""Issue 3's benchmark: does deepfit's Trainer run as fast as a hand-written PyTorch loop?

Run by hand (not part of the test suite):

    .venv/bin/python benchmarks/run.py [--quick] [--cases NAME ...] [--repeats N] [--epochs N]
        [--contenders NAME ...] [--device cpu|cuda] [--precision 32|bf16] [--threads N]
        [--max-wait SECONDS] [--out benchmarks/RESULTS.md]

In one process, on the same data, model, optimizer (AdamW lr 1e-3, weight decay 0.01, foreach),
gradient clipping (norm 1.0), batch size and epochs, it times:

    deepfit     deepfit's Trainer on InMemoryBatches (tiny 256-row validation split, not timed)
    hand        a careful hand-written loop: randperm slicing, no .item() per step
    dataloader  the guide's loop: DataLoader(TensorDataset, shuffle=True), .item() per step
    lightning   Lightning's Trainer (bar, logger, checkpoints, summary off) on that DataLoader
    skorch      skorch's NeuralNetClassifier with GradientNormClipping
    keras       Keras 3 on its torch backend, an equivalent Sequential model

What is timed: the training steps of each epoch only (no validation), excluding the first
(warm-up) epoch; one repetition is a fresh model trained for `epochs` epochs, and the contenders'
order rotates between repetitions. Beside the wall time, the CPU time of the main thread (all
the work with --threads 1, and robust to other processes on a shared machine). Memory: VmRSS from /proc/self/status sampled every 5 ms in a
thread while a contender runs; "+RSS" is the peak minus the level just before it started (after
gc and malloc_trim), which is what the contender itself needed. (The process's ru_maxrss is
monotone over the whole run, so it cannot tell the contenders apart.)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import gc
import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import platform
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from deepfit.data.batches import InMemoryBatches
from deepfit.models import InputSpec, OutputSpec, create
from deepfit.training.callbacks.base import Callback
from deepfit.training.losses import CrossEntropy
from deepfit.training.trainer import Trainer

N_FEATURES = 50
VAL_ROWS = 256
LR, WEIGHT_DECAY, CLIP = 1e-3, 0.01, 1.0
HIDDEN, DROPOUT = (128, 64, 32), 0.3
CNN_WIDTHS, CNN_HIDDEN, CNN_CLASSES = (32, 64, 128), 256, 10
SPARE = 0.25  # other processes may use the cores torch leaves idle, less this, before we wait


def busy_limit() -> float:
    """Cores other processes may use before a measurement counts as disturbed: those torch's
    threads leave free, less SPARE (at least SPARE)."""
    return max(SPARE, (os.cpu_count() or 1) - torch.get_num_threads() - SPARE)


class Skip(Exception):
    """A contender that cannot run in this setting (the message says why)."""


# ---------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    name: str
    title: str
    model: str  # "mlp" or "cnn"
    rows: int
    batch: int
    epochs: int
    repeats: int
    contenders: tuple[str, ...]
    note: str = ""  # said under the case's table
    left_out_because: str = ""  # why some of ALL are not run by default


ALL = ("deepfit", "hand", "dataloader", "lightning", "skorch", "keras")
CORE = ("deepfit", "hand", "dataloader")
ONE_EPOCH = ("One epoch per repetition, timed whole: the case's untimed warm-up run has already "
             "paid the one-time costs.")
MILLION_NOTE = ONE_EPOCH.replace("One epoch", "One epoch (3,906 steps)")
CNN_NOTE = ONE_EPOCH + " Three repetitions, not five, to keep the whole run near 20 minutes on 2 cores."
CNN_SLOW = ("one CNN epoch takes half a minute to a minute per contender on a 2-core CPU, and the "
            "question here is deepfit against the hand loop")
MILLION_SLOW = ("an epoch takes about 20 s for Lightning and skorch and over a minute for Keras "
                "on a 2-core CPU")


def full_cases() -> dict[str, Case]:
    cases = [
        Case("mlp-b256", "MLP 128-64-32, 100k × 50, batch 256", "mlp", 100_000, 256, 3, 5, ALL),
        Case("mlp-b4096", "MLP 128-64-32, 100k × 50, batch 4096", "mlp", 100_000, 4096, 3, 5, ALL),
        Case("scale-10k", "Scaling: MLP, 10k × 50, batch 256", "mlp", 10_000, 256, 3, 5, ALL),
        Case("scale-1m", "Scaling: MLP, 1M × 50, batch 256", "mlp", 1_000_000, 256, 1, 5, CORE,
             MILLION_NOTE, MILLION_SLOW),
        Case("cnn", "The guide's CNN, 10k × 3×32×32, batch 128", "cnn", 10_000, 128, 1, 3, CORE,
             CNN_NOTE, CNN_SLOW),
    ]
    return {c.name: c for c in cases}


def quick_cases() -> dict[str, Case]:
    return {"quick": Case("quick", "MLP 128-64-32, 2k × 50, batch 256 (quick)", "mlp", 2_000, 256,
                          2, 2, CORE)}


SCALING = ("scale-10k", "mlp-b256", "scale-1m")  # the scaling series: 10k, 100k, 1M rows


# ----------------------------------------------------------------------------- data, models
def make_data(case: Case, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`rows + VAL_ROWS` rows: Gaussian features with a noisy linear 2-class label, or random
    images with random labels for the CNN."""
    g = torch.Generator().manual_seed(seed)
    n = case.rows + VAL_ROWS
    if case.model == "cnn":
        return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, CNN_CLASSES, (n,), generator=g)
    X = torch.randn(n, N_FEATURES, generator=g)
    w = torch.randn(N_FEATURES, generator=g)
    y = ((X @ w + 0.5 * torch.randn(n, generator=g)) > 0).long()
    return X, y


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class GuideCNN(nn.Module):
    """The guide's CNN for 32×32 colour images: three blocks of (Conv-BN-ReLU) × 2, MaxPool,
    Dropout2d; then Linear-BN-ReLU-Dropout and the head. (deepfit has no `cnn` model yet.)"""

    def __init__(self, n_classes: int = CNN_CLASSES, dropout2d: float = 0.25) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for width in CNN_WIDTHS:
            layers += conv_bn_relu(c_in, width) + conv_bn_relu(width, width)
            layers += [nn.MaxPool2d(2), nn.Dropout2d(dropout2d)]
            c_in = width
        self.features = nn.Sequential(*layers)  # [B, 3, 32, 32] → [B, 128, 4, 4]
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c_in * 16, CNN_HIDDEN), nn.BatchNorm1d(CNN_HIDDEN), nn.ReLU(),
            nn.Dropout(0.5), nn.Linear(CNN_HIDDEN, n_classes),
        )  # [B, 2048] → [B, n_classes]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_model(kind: str) -> nn.Module:
    if kind == "cnn":
        return GuideCNN()
    spec = InputSpec(n_features=N_FEATURES, n_dense=N_FEATURES)
    return create("mlp", spec, OutputSpec("classification", 2), hidden=HIDDEN, dropout=DROPOUT)


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY, foreach=True)


# ------------------------------------------------------------------------------ one run
@dataclass
class Setup:
    """What every contender gets for one repetition."""

    X: torch.Tensor  # training rows (CPU)
    y: torch.Tensor
    X_val: torch.Tensor  # the tiny validation split (deepfit only; never timed)
    y_val: torch.Tensor
    kind: str
    batch: int
    epochs: int
    seed: int
    device: torch.device
    bf16: bool

    def model(self) -> nn.Module:
        torch.manual_seed(self.seed)  # the same initial weights for every torch contender
        return build_model(self.kind).to(self.device)

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    @property
    def drop_last(self) -> bool:  # a last batch of one sample breaks BatchNorm in training
        return len(self.X) % self.batch == 1


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class EpochClock:
    """Per-epoch wall time, and CPU time of the calling thread, between start() and stop(),
    synchronised with the device. With one torch thread the calling thread does all the work,
    and its CPU time hardly changes when other processes compete for the cores."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.times: list[float] = []  # wall seconds per epoch
        self.cpu: list[float] = []  # CPU seconds of the main thread per epoch
        self._wall = self._cpu = 0.0

    def start(self) -> None:
        synchronize(self.device)
        self._wall, self._cpu = time.perf_counter(), time.thread_time()

    def stop(self) -> None:
        synchronize(self.device)
        self.times.append(time.perf_counter() - self._wall)
        self.cpu.append(time.thread_time() - self._cpu)


class DeepfitClock(Callback):
    """CPU time per epoch for deepfit (its wall time comes from the history's train_seconds)."""

    def __init__(self, clock: EpochClock) -> None:
        self.clock = clock

    def on_epoch_start(self, trainer, state) -> None:
        self.clock.start()

    def on_epoch_end(self, trainer, state, logs) -> None:
        self.clock.stop()


# ------------------------------------------------------------------------------ contenders
def run_deepfit(s: Setup) -> EpochClock:
    extra = {}
    if s.bf16:
        if "precision" not in inspect.signature(Trainer.__init__).parameters:
            raise Skip("this deepfit's Trainer has no precision= argument yet")
        extra["precision"] = "bf16"
    model, clock = s.model(), EpochClock(s.device)
    trainer = Trainer(model, CrossEntropy(), make_optimizer(model), epochs=s.epochs,
                      device=s.device, clip_norm=CLIP, callbacks=[DeepfitClock(clock)], **extra)
    train = InMemoryBatches(s.X, s.y, s.batch, seed=s.seed, device=s.device)
    val = InMemoryBatches(s.X_val, s.y_val, s.batch, shuffle=False, device=s.device)
    trainer.fit(train, val)
    clock.times = [logs["train_seconds"] for logs in trainer.state.history]
    return clock


def run_hand(s: Setup) -> EpochClock:
    """The careful loop: data on the device, a shuffled index sliced into batches, the loss
    summed on the device (one .item() per epoch, after the clock stops)."""
    model = s.model()
    opt, loss_fn = make_optimizer(model), nn.CrossEntropyLoss()
    params = [p for p in model.parameters() if p.requires_grad]
    X, y = s.X.to(s.device), s.y.to(s.device)
    n = len(X)
    n_used = n - 1 if s.drop_last else n
    clock = EpochClock(s.device)
    for _ in range(s.epochs):
        model.train()
        loss_sum = torch.zeros((), device=s.device)
        clock.start()
        perm = torch.randperm(n, device=s.device)
        for i in range(0, n_used, s.batch):
            idx = perm[i : i + s.batch]
            xb, yb = X[idx], y[idx]
            with s.autocast():
                loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, CLIP, foreach=True)
            opt.step()
            loss_sum += loss.detach() * len(yb)
        clock.stop()
        loss_sum.item()
    return clock


def guide_loader(s: Setup) -> DataLoader:
    return DataLoader(TensorDataset(s.X, s.y), batch_size=s.batch, shuffle=True,
                      drop_last=s.drop_last)


def run_dataloader(s: Setup) -> EpochClock:
    """The guide's loop: a per-sample DataLoader, a copy to the device and .item() per step."""
    model = s.model()
    opt, loss_fn = make_optimizer(model), nn.CrossEntropyLoss()
    loader = guide_loader(s)
    clock = EpochClock(s.device)
    for _ in range(s.epochs):
        model.train()
        total = 0.0
        clock.start()
        for xb, yb in loader:
            xb, yb = xb.to(s.device), yb.to(s.device)
            opt.zero_grad()
            with s.autocast():
                loss = loss_fn(model(xb), yb)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            opt.step()
            total += loss.item()
        clock.stop()
    return clock


def run_lightning(s: Setup) -> EpochClock:
    import lightning as L

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    clock = EpochClock(s.device)

    class Timer(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            clock.start()

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            clock.stop()

    class Module(L.LightningModule):
        def __init__(self, model: nn.Module) -> None:
            super().__init__()
            self.model, self.loss_fn = model, nn.CrossEntropyLoss()

        def training_step(self, batch, batch_idx):
            x, y = batch
            return self.loss_fn(self.model(x), y)

        def configure_optimizers(self):
            return make_optimizer(self.model)

    trainer = L.Trainer(
        accelerator="gpu" if s.device.type == "cuda" else "cpu", devices=1, max_epochs=s.epochs,
        precision="bf16-mixed" if s.bf16 else "32-true", gradient_clip_val=CLIP,
        gradient_clip_algorithm="norm", enable_progress_bar=False, logger=False,
        enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=[Timer()],
    )
    trainer.fit(Module(s.model()), train_dataloaders=guide_loader(s))
    return clock


def run_skorch(s: Setup) -> EpochClock:
    from skorch import NeuralNetClassifier
    from skorch.callbacks import Callback as SkorchCallback
    from skorch.callbacks import GradientNormClipping

    clock = EpochClock(s.device)

    class Clock(SkorchCallback):  # CPU time; the wall time is skorch's own `dur`
        def on_epoch_begin(self, net, **kwargs) -> None:
            clock.start()

        def on_epoch_end(self, net, **kwargs) -> None:
            clock.stop()

    class AutocastNet(NeuralNetClassifier):  # forward and loss under autocast (bf16 only)
        def infer(self, x, **fit_params):
            with s.autocast():
                return super().infer(x, **fit_params)

        def get_loss(self, y_pred, y_true, *args, **kwargs):
            with s.autocast():
                return super().get_loss(y_pred, y_true, *args, **kwargs)

    net = AutocastNet(
        module=s.model(), criterion=nn.CrossEntropyLoss, optimizer=torch.optim.AdamW,
        optimizer__lr=LR, optimizer__weight_decay=WEIGHT_DECAY, optimizer__foreach=True,
        max_epochs=s.epochs, batch_size=s.batch, iterator_train__shuffle=True,
        iterator_train__drop_last=s.drop_last, train_split=None, verbose=0,
        device=str(s.device), callbacks=[("clip", GradientNormClipping(CLIP)), ("clock", Clock())],
    )
    net.fit(s.X, s.y)
    clock.times = list(net.history[:, "dur"])
    return clock


def keras_layers(keras, kind: str) -> list:
    """The same architecture in Keras (torch's BatchNorm momentum and epsilon; NCHW images)."""
    K = keras.layers

    def bn(axis: int = -1):
        return K.BatchNormalization(axis=axis, momentum=0.9, epsilon=1e-5)

    if kind == "mlp":
        layers = [keras.Input((N_FEATURES,))]
        for width in HIDDEN:
            layers += [K.Dense(width), bn(), K.ReLU(), K.Dropout(DROPOUT)]
        return [*layers, K.Dense(2)]
    cf = "channels_first"
    layers = [keras.Input((3, 32, 32))]
    for width in CNN_WIDTHS:
        for _ in range(2):
            layers += [K.Conv2D(width, 3, padding="same", use_bias=False, data_format=cf),
                       bn(axis=1), K.ReLU()]
        layers += [K.MaxPooling2D(2, data_format=cf), K.SpatialDropout2D(0.25, data_format=cf)]
    layers += [K.Flatten(), K.Dense(CNN_HIDDEN), bn(), K.ReLU(), K.Dropout(0.5)]
    return [*layers, K.Dense(CNN_CLASSES)]


def run_keras(s: Setup) -> EpochClock:
    os.environ["KERAS_BACKEND"] = "torch"  # read when keras is first imported
    os.environ["KERAS_TORCH_DEVICE"] = s.device.type
    import keras

    if keras.backend.backend() != "torch":
        raise Skip(f"keras was imported with the {keras.backend.backend()} backend")
    clock = EpochClock(s.device)

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None) -> None:
            clock.start()

        def on_epoch_end(self, epoch, logs=None) -> None:
            clock.stop()

    keras.utils.set_random_seed(s.seed)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if s.bf16 else "float32")
    try:
        model = keras.Sequential(keras_layers(keras, s.kind))
        opt = keras.optimizers.AdamW(learning_rate=LR, weight_decay=WEIGHT_DECAY, clipnorm=CLIP)
        model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(s.X.numpy(), s.y.numpy(), batch_size=s.batch, epochs=s.epochs, shuffle=True,
                  verbose=0, callbacks=[Timer()])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return clock


@dataclass(frozen=True)
class Contender:
    label: str
    run: Callable[[Setup], EpochClock]
    package: str | None = None  # the package it needs beyond torch and deepfit


CONTENDERS = {
    "deepfit": Contender("deepfit Trainer", run_deepfit),
    "hand": Contender("hand-written loop", run_hand),
    "dataloader": Contender("DataLoader loop (guide)", run_dataloader),
    "lightning": Contender("Lightning Trainer", run_lightning, "lightning"),
    "skorch": Contender("skorch NeuralNetClassifier", run_skorch, "skorch"),
    "keras": Contender("Keras 3 (torch backend)", run_keras, "keras"),
}


# --------------------------------------------------------------------------- measuring
def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler:
    """The peak of VmRSS while the block runs, sampled every `interval` seconds in a thread."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.base, self.peak = interval, 0.0, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> RssSampler:
        self.base = self.peak = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def release_memory(device: torch.device) -> None:
    """Give freed memory back, so that the next contender's RSS increase is its own."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


@dataclass
class Tally:
    """One contender's measurements over the repetitions of a case."""

    seconds: list[float] = field(default_factory=list)  # mean s/epoch after the warm-up epoch
    cpu: list[float] = field(default_factory=list)  # the same in CPU seconds of the main thread
    peak_mb: list[float] = field(default_factory=list)
    grow_mb: list[float] = field(default_factory=list)
    gpu_mb: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)  # cores other processes used meanwhile
    note: str = ""


def cpu_ticks() -> tuple[int, int]:
    """(busy clock ticks of the whole machine, clock ticks of this process) so far."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:9]]
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(ticks) - ticks[3] - ticks[4], int(fields[11]) + int(fields[12])  # utime + stime


class OtherLoad:
    """How many cores other processes kept busy while the block ran (the machine is shared)."""

    def __enter__(self) -> OtherLoad:
        self.cores = 0.0
        self._t, (self._busy, self._own) = time.perf_counter(), cpu_ticks()
        return self

    def __exit__(self, *exc) -> None:
        busy, own = cpu_ticks()
        seconds = max(time.perf_counter() - self._t, 1e-9)
        others = (busy - self._busy) - (own - self._own)
        self.cores = max(0.0, others / os.sysconf("SC_CLK_TCK") / seconds)


def wait_for_quiet(deadline: float) -> None:
    """Wait (until time.monotonic() reaches deadline) for other processes to go quiet."""
    while time.monotonic() < deadline:
        with OtherLoad() as load:
            time.sleep(0.5)
        if load.cores < busy_limit():
            return


def measure(name: str, s: Setup, tally: Tally, max_wait: float) -> None:
    """One repetition of one contender; measured again (twice at most) if other processes took
    more than busy_limit() cores meanwhile. It waits max_wait seconds in all for quiet."""
    deadline = time.monotonic() + max_wait
    for _ in range(3):
        wait_for_quiet(deadline)
        release_memory(s.device)
        with warnings.catch_warnings(), RssSampler() as rss, OtherLoad() as load:
            warnings.simplefilter("ignore")
            clock = CONTENDERS[name].run(s)
        if load.cores < busy_limit() or time.monotonic() >= deadline:
            break
    skip = 1 if len(clock.times) > 1 else 0  # the warm-up epoch
    tally.seconds.append(statistics.fmean(clock.times[skip:]))
    tally.cpu.append(statistics.fmean(clock.cpu[skip:]))
    tally.peak_mb.append(rss.peak)
    tally.grow_mb.append(rss.peak - rss.base)
    tally.load.append(load.cores)
    if s.device.type == "cuda":
        tally.gpu_mb.append(torch.cuda.max_memory_allocated(s.device) / 2**20)


def warm_up(case: Case, X: torch.Tensor, y: torch.Tensor, device: torch.device, bf16: bool) -> None:
    """One untimed short run of each contender, so that one-time costs (imports, kernel
    caches, lazy initialisation) fall on no measured repetition."""
    rows = min(case.rows, 4 * case.batch)
    s = Setup(X[:rows], y[:rows], X[-VAL_ROWS:], y[-VAL_ROWS:], case.model, case.batch, 1, 0,
              device, bf16)
    for name in case.contenders:
        if missing_package(name) is None:
            with warnings.catch_warnings(), contextlib.suppress(Exception):
                warnings.simplefilter("ignore")
                CONTENDERS[name].run(s)


def missing_package(name: str) -> str | None:
    package = CONTENDERS[name].package
    if package and importlib.util.find_spec(package) is None:
        return "not installed"
    return None


def run_case(case: Case, device: torch.device, bf16: bool, max_wait: float) -> dict[str, Tally]:
    X, y = make_data(case)
    warm_up(case, X, y, device, bf16)
    tallies = {name: Tally(note=missing_package(name) or "") for name in case.contenders}
    for rep in range(case.repeats):
        k = rep % len(case.contenders)
        order = case.contenders[k:] + case.contenders[:k]  # each contender takes each place
        s = Setup(X[: case.rows], y[: case.rows], X[case.rows :], y[case.rows :], case.model,
                  case.batch, case.epochs, rep, device, bf16)
        for name in order:
            tally = tallies[name]
            if tally.note:
                continue
            try:
                measure(name, s, tally, max_wait)
            except Skip as e:
                tally.note = f"skipped: {e}"
            except Exception as e:  # report it and carry on with the others
                tally.note = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
            done = tally.note or (f"{tally.seconds[-1]:.3f} s/epoch, CPU {tally.cpu[-1]:.3f} s, "
                                  f"others {tally.load[-1]:.2f} cores")
            print(f"[{case.name}] rep {rep + 1}/{case.repeats} {name}: {done}", file=sys.stderr)
    return tallies


# ------------------------------------------------------------------------------ report
def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        if importlib.util.find_spec(package) is None:
            return "not installed"
        return str(getattr(importlib.import_module(package), "__version__", "?"))


def header(device: torch.device, precision: str, cases: list[Case], command: str) -> list[str]:
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    packages = ", ".join(f"{p} {version(p)}" for p in ("deepfit", "lightning", "skorch", "keras"))
    lines = [
        "# deepfit benchmark: the Trainer against a hand-written PyTorch loop (issue 3)",
        "",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        f"- torch {torch.__version__}, Python {platform.python_version()}; {packages}",
        f"- Device: {device.type}{gpu}; precision: {precision}",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; command: `{command}`",
        "- Every contender: the same data, model (deepfit `mlp` 128-64-32, dropout 0.3, or the "
        "guide's CNN), AdamW (lr 1e-3, weight decay 0.01, foreach), clipping at norm 1.0, batch "
        "size and epochs. Each repetition trains a fresh model; the contenders' order rotates "
        "between repetitions.",
        "- s/epoch: training steps only (no validation), mean over the epochs after the first "
        "(warm-up) one, or the one epoch where a repetition has one; median over repetitions, "
        "and min–max. samples/s = rows / median s/epoch. × hand = median / the hand-written "
        "loop's median.",
        "- CPU s/epoch: CPU time of the main thread over the same epochs (time.thread_time; for "
        "deepfit and skorch from a callback at epoch start and end, so it also holds deepfit's "
        "256-row validation pass and skorch's epoch-end bookkeeping, under a millisecond). With "
        "one torch thread (--threads 1) it is all the work and hardly moves when other "
        "processes compete for the cores; with more threads it leaves out the intra-op workers.",
        "- peak RSS: the process's VmRSS peak while the contender ran (data and libraries "
        "included); +RSS: that peak minus VmRSS just before it started (after gc and "
        "malloc_trim), i.e. what the contender needed beyond the data. Sampled every 5 ms from "
        "/proc/self/status; peak RSS is the largest over repetitions, +RSS the median.",
        f"- The machine may be shared: before each measurement the script waits for other "
        f"processes to use < {busy_limit():.2f} cores, and measures again (twice at most) if they used more "
        f"meanwhile. Every case starts with an untimed short run of each contender (imports, "
        f"lazy initialisation).",
        "",
        "| case | rows | batch | epochs per repetition (timed) | repetitions | contenders |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    lines += [f"| {c.title} | {c.rows:,} | {c.batch} | {c.epochs} ({max(c.epochs - 1, 1)}) | "
              f"{c.repeats} | {', '.join(c.contenders)} |" for c in cases]
    return [*lines, ""]


def case_table(case: Case, tallies: dict[str, Tally], cuda: bool) -> list[str]:
    lines = [f"## {case.title}", ""]
    cols = ("| contender | samples/s | s/epoch (median) | min–max | × hand | CPU s/epoch | "
            "× hand (CPU) | peak RSS MB | +RSS MB |")
    lines += [cols + (" peak GPU MB |" if cuda else ""), "|" + " --- |" + " ---: |" * (8 + cuda)]
    hand = tallies.get("hand")
    for name, t in tallies.items():
        label = CONTENDERS[name].label
        if not t.seconds:
            lines.append(f"| {label} | {t.note} |" + " |" * (7 + cuda))
            continue
        med, cpu = statistics.median(t.seconds), statistics.median(t.cpu)
        row = (f"| {label} | {case.rows / med:,.0f} | {med:.3f} | {min(t.seconds):.3f}–"
               f"{max(t.seconds):.3f} | {ratio(t.seconds, hand and hand.seconds)} | {cpu:.3f} | "
               f"{ratio(t.cpu, hand and hand.cpu)} | {max(t.peak_mb):.0f} | "
               f"{statistics.median(t.grow_mb):.0f} |")
        lines.append(row + (f" {max(t.gpu_mb):.0f} |" if cuda else ""))
    return [*lines, *case_notes(case, tallies)]


def ratio(values: list[float], reference: list[float] | None) -> str:
    if not reference:
        return "–"
    return f"{statistics.median(values) / statistics.median(reference):.2f}"


def case_notes(case: Case, tallies: dict[str, Tally]) -> list[str]:
    notes = [f"{CONTENDERS[n].label}: {t.note}" for n, t in tallies.items() if t.note and t.seconds]
    loads = [c for t in tallies.values() for c in t.load]
    loaded = sum(c >= busy_limit() for c in loads)
    if loaded:
        notes.append(f"{loaded} of {len(loads)} measurements ran while other processes kept "
                     f"≥ {busy_limit():.2f} cores busy (median over all measurements: "
                     f"{statistics.median(loads):.2f} cores); see the spread.")
    left_out = [CONTENDERS[n].label for n in ALL if n not in case.contenders]
    if left_out and case.left_out_because:
        notes.append(f"Not run on this case by default ({case.left_out_because}): "
                     f"{', '.join(left_out)}; add them with --contenders.")
    notes += [case.note] if case.note else []
    return [""] + [f"Note: {n}" for n in notes] + ([""] if notes else [])


def scaling_table(cases: dict[str, Case], results: dict[str, dict[str, Tally]]) -> list[str]:
    """µs per sample and +RSS across 10k, 100k and 1M rows: both should stay flat or grow
    no faster than the rows."""
    series = [cases[n] for n in SCALING if n in results]
    if len(series) < 2:
        return []
    lines = ["## Scaling: MLP at batch 256, µs per sample, wall / CPU (+RSS MB)", ""]
    lines += ["| contender | " + " | ".join(f"{c.rows:,} rows" for c in series) + " |"]
    lines += ["| --- |" + " ---: |" * len(series)]
    for name in CONTENDERS:
        cells = []
        for c in series:
            t = results[c.name].get(name)
            if t is None or not t.seconds:
                cells.append(t.note if t else "–")
                continue
            wall, cpu = (statistics.median(v) / c.rows * 1e6 for v in (t.seconds, t.cpu))
            cells.append(f"{wall:.1f} / {cpu:.1f} (+{statistics.median(t.grow_mb):.0f})")
        lines.append(f"| {CONTENDERS[name].label} | " + " | ".join(cells) + " |")
    data_mb = ", ".join(f"{c.rows * (N_FEATURES + 2) * 4 / 2**20:.0f} MB" for c in series)
    return [*lines, "", f"The data themselves (X and y, float32 and int64): {data_mb}.", ""]


def summary(cases: dict[str, Case], results: dict[str, dict[str, Tally]]) -> list[str]:
    """One line per case: deepfit's ratio to the hand loop, the number issue 3 is about.

    The headline is the median of the per-repetition ratios: within a repetition deepfit and the
    hand loop run back to back (their order alternating), so each ratio cancels the drift of the
    machine's speed between minutes, which on a shared virtual machine reaches ±30% and makes a
    ratio of two unpaired medians swing by ±10% with five repetitions."""
    lines = ["## deepfit ÷ hand-written loop (1.00 = as fast; the issue asks for ≤ 1.05)", "",
             "Median of the per-repetition ratios (deepfit and the hand loop back to back in each "
             "repetition), with their quartiles; then the ratio of the two medians (unpaired: "
             "it mixes fast and slow minutes of the machine) for wall and CPU time.", ""]
    for name, tallies in results.items():
        d, h = tallies.get("deepfit"), tallies.get("hand")
        if not (d and h and d.seconds and h.seconds):
            continue
        ratios = [a / b for a, b in zip(d.seconds, h.seconds)]
        paired = statistics.median(ratios)
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (paired,) * 3
        wall = statistics.median(d.seconds) / statistics.median(h.seconds)
        cpu = statistics.median(d.cpu) / statistics.median(h.cpu)
        flag = "" if paired <= 1.05 else " (above 1.05)"
        lines.append(f"- {cases[name].title}: **{paired:.3f}**{flag} (quartiles {q1:.2f}–{q3:.2f}, "
                     f"{len(ratios)} repetitions); ratio of the medians: wall {wall:.3f}, CPU {cpu:.3f}")
    return [*lines, ""]


# -------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, core contenders (< 30 s)")
    p.add_argument("--cases", nargs="+", help=f"cases to run (default all): {', '.join(full_cases())}")
    p.add_argument("--contenders", nargs="+", choices=list(CONTENDERS), help="override each case's")
    p.add_argument("--repeats", type=int, help="repetitions per case (default: the case's)")
    p.add_argument("--epochs", type=int, help="epochs per repetition, the first is warm-up")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--precision", choices=("32", "bf16"), default="32")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own; "
                   "1 with --quick, which must stay fast on a busy machine)")
    p.add_argument("--max-wait", type=float, help="seconds a measurement may wait for other "
                   "processes to go quiet, retries included (default 60; 0 with --quick)")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    return p.parse_args(argv)


def select_cases(args: argparse.Namespace) -> dict[str, Case]:
    cases = quick_cases() if args.quick else full_cases()
    if args.cases:
        unknown = sorted(set(args.cases) - set(cases))
        if unknown:
            sys.exit(f"run.py: unknown case(s) {', '.join(unknown)}; choose from {', '.join(cases)}")
        cases = {n: c for n, c in cases.items() if n in args.cases}
    changes = {k: v for k, v in (("repeats", args.repeats), ("epochs", args.epochs)) if v}
    if args.contenders:
        changes["contenders"] = tuple(args.contenders)
    return {n: replace(c, **changes) for n, c in cases.items()}


def report(args: argparse.Namespace, device: torch.device, cases: dict[str, Case],
           results: dict[str, dict[str, Tally]], seconds: float) -> str:
    lines = header(device, args.precision, list(cases.values()), args.command)
    lines += summary(cases, results)
    for name, tallies in results.items():
        lines += case_table(cases[name], tallies, device.type == "cuda")
    lines += scaling_table(cases, results)
    pending = [c.title for n, c in cases.items() if n not in results]
    lines += [f"Not run yet: {', '.join(pending)}.", ""] if pending else []
    return "\n".join([*lines, f"Total benchmark time: {seconds:.0f} s."]) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("run.py: --device cuda, but torch sees no CUDA device")
    threads = args.threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    args.command = "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    device = torch.device(args.device)
    cases = select_cases(args)
    max_wait = args.max_wait if args.max_wait is not None else (0 if args.quick else 60)
    start = time.perf_counter()
    results: dict[str, dict[str, Tally]] = {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name, case in cases.items():
        results[name] = run_case(case, device, args.precision == "bf16", max_wait)
        text = report(args, device, cases, results, time.perf_counter() - start)
        args.out.write_text(text)  # after every case: a partial report survives an interruption
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
