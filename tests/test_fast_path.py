"""The fast path: no host sync per step, the streaming path gives the same weights, and reduced
precision still learns."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_iris

import deepfit
from deepfit.data.batches import InMemoryBatches, StreamingBatches, TensorSource
from deepfit.models import InputSpec, OutputSpec, create
from deepfit.training import trainer as trainer_module
from deepfit.training.losses import CrossEntropy
from deepfit.training.trainer import Trainer

DEEPFIT_SRC = str(Path(deepfit.__file__).parent)
SYNCS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__")


def test_fast_and_streaming_paths_give_identical_weights(tmp_path):
    settings = {"epochs": 4, "patience": 100, "seed": 2, "progress": False}
    runs = {loader: deepfit.train("digits", loader=loader, out=tmp_path / loader, **settings)
            for loader in ("memory", "stream")}
    memory, stream = (load_file(runs[k].path / "model.safetensors") for k in ("memory", "stream"))
    assert all(torch.equal(memory[k], stream[k]) for k in memory)
    assert any("streaming DataLoader" in d for d in runs["stream"].config["decisions"])


def test_streaming_batches_follow_the_same_order_from_any_start():
    X, y = torch.randn(101, 3), torch.arange(101)
    memory = InMemoryBatches(X, y, 16, seed=4)
    stream = StreamingBatches(TensorSource(X, y), 16, seed=4, workers=0)
    for start in (0, 3):
        a, b = list(memory.epoch(2, start)), list(stream.epoch(2, start))
        assert len(a) == len(b) == len(memory) - start
        assert all(torch.equal(p[1], q[1]) for p, q in zip(a, b))


def _trainer(precision="32", schedule=None):
    torch.manual_seed(0)
    model = create("mlp", InputSpec(20, 20), OutputSpec("classification", 3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-2, total_steps=100) if schedule else None
    return Trainer(model, CrossEntropy(), opt, epochs=1, device=torch.device("cpu"),
                   precision=precision, scheduler=sched, scheduler_interval="step" if sched else "none")


@pytest.mark.parametrize("precision,schedule", [("32", None), ("32", "onecycle"), ("bf16", None)])
def test_no_host_sync_inside_the_training_steps(monkeypatch, precision, schedule):
    """Count every call that would copy a value to the host, made from deepfit's own code, while
    one epoch of 20 steps runs: the epoch's mean loss, read once at its end, is the only one."""
    calls: list[str] = []
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(DEEPFIT_SRC):
                calls.append(f"{_name} from {Path(caller).name}:{sys._getframe(1).f_lineno}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    trainer = _trainer(precision, schedule)
    X, y = torch.randn(640, 20), torch.randint(0, 3, (640,))
    trainer._train_epoch(InMemoryBatches(X, y, 32, seed=0))
    assert trainer.state.step == 20
    assert calls == [f"item from trainer.py:{_line_of('return (self.epoch_loss')}"]


def _line_of(text: str) -> int:
    lines = Path(trainer_module.__file__).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_bf16_autocast_trains_digits_to_95_percent(tmp_path):
    run = deepfit.train("digits", precision="bf16", out=tmp_path / "run", progress=False)
    assert run.metrics["accuracy"] >= 0.95
    assert run.config["train"]["precision"] == "bf16"


def test_fp16_trains_through_the_grad_scaler_and_warns_on_the_cpu(tmp_path):
    run = deepfit.train("digits", precision="fp16", out=tmp_path / "run", progress=False,
                        device="cpu", epochs=15)
    assert run.metrics["accuracy"] >= 0.93
    assert run.config["train"]["precision"] == "fp16"
    assert any("fp16 on the CPU" in w for w in run.config["warnings"])


def test_the_grad_scaler_skips_a_step_with_inf_gradients_and_lowers_its_scale():
    trainer = _trainer("fp16")
    assert trainer.scaler is not None
    before = [p.detach().clone() for p in trainer.model.parameters()]
    scale = trainer.scaler.get_scale()
    loss = trainer.loss_fn(trainer.model(torch.randn(8, 20)), torch.randint(0, 3, (8,)))
    trainer._step(loss * float("inf"))  # overflowing gradients: the step must be skipped
    assert trainer.scaler.get_scale() < scale
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: run on the GPU machine")
def test_no_device_sync_inside_the_training_steps_on_cuda():
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = create("mlp", InputSpec(20, 20), OutputSpec("classification", 3))
    trainer = Trainer(model, CrossEntropy(), torch.optim.AdamW(model.parameters(), fused=True),
                      epochs=1, device=device, precision="bf16")
    batches = InMemoryBatches(torch.randn(640, 20), torch.randint(0, 3, (640,)), 32, device=device)
    list(batches.epoch(0))  # warm-up outside the check
    torch.cuda.set_sync_debug_mode("error")
    try:
        for xb, yb in batches.epoch(0):
            with trainer._autocast():
                loss = trainer.loss_fn(trainer.forward(xb), yb)
            trainer._step(loss)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_compile_trains_through_the_compiled_module_and_saves_plain_weights(tmp_path, monkeypatch):
    """--compile goes through torch.compile (here with the eager backend: inductor's code
    generation takes half a minute on this CPU and is torch's to test); the weights saved are
    the plain module's, equal to an uncompiled run's, and the run reloads."""
    compiled = []
    real_compile = torch.compile

    def eager_compile(model, **kwargs):
        compiled.append(type(model).__name__)
        return real_compile(model, backend="eager")

    monkeypatch.setattr(torch, "compile", eager_compile)
    settings = {"epochs": 2, "progress": False, "report": False, "seed": 3}
    plain = deepfit.train("iris", out=tmp_path / "plain", **settings)
    run = deepfit.train("iris", compile=True, out=tmp_path / "compiled", **settings)
    assert compiled == [type(run.predictor.model).__name__]
    a, b = (load_file(r.path / "model.safetensors") for r in (plain, run))
    assert a.keys() == b.keys() and not any(k.startswith("_orig_mod") for k in b)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert run.config["train"]["compile"] is True
    rows = load_iris(as_frame=True).data.head(5)
    assert (deepfit.load(run.path).predict(rows) == run.predictor.predict(rows)).all()
