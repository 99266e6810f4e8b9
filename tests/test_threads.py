"""Threads chosen for the work (training/threads.py): the rule on models of known size, the
choice recorded in config.json and honoured, --threads overriding it, a resumed run keeping the
count it started with."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import deepfit
from deepfit.core.notes import Notes
from deepfit.modalities import get_modality
from deepfit.models.registry import InputSpec, OutputSpec
from deepfit.models.transfer import build_model
from deepfit.training import threads as threads_module
from deepfit.training.threads import OP_FLOPS_FOR_THREADS, choose_threads, mean_op_flops
from deepfit.training.trainer import Trainer, TrainingInterrupted

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(threads_module, "default_threads", lambda: 4)


def _meta_model(name: str, spec: InputSpec) -> nn.Module:
    with torch.device("meta"):
        return build_model(name, {}, spec, OutputSpec("classification", 10), None, Notes())[0]


def test_op_flops_are_those_of_the_matrix_products():
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    flops = mean_op_flops(model, torch.empty(32, 64))
    # two addmm: 2·32·64·128 and 2·32·128·10 FLOPs (torch.utils.flop_counter's formula)
    assert flops == pytest.approx((2 * 32 * 64 * 128 + 2 * 32 * 128 * 10) / 2)
    assert model[0].weight.device.type == "cpu"  # the model measured is left where it was


def test_small_models_get_one_thread_large_convolutions_every_core(four_cores):
    image, sequence = get_modality("image"), get_modality("sequence")
    mlp = choose_threads(_meta_model("mlp", InputSpec(64, 64)), torch.empty(64, 64), CPU)
    gru_spec = sequence.example_input((50, 8))
    gru = choose_threads(_meta_model("gru", gru_spec), torch.empty(64, 50, 8), CPU)
    cnn_spec = image.example_input((1, 28, 28))
    cnn = choose_threads(_meta_model("cnn", cnn_spec), torch.empty(64, 1, 28, 28), CPU)
    assert (mlp.threads, gru.threads, cnn.threads) == (1, 1, 4)
    assert mlp.op_flops < OP_FLOPS_FOR_THREADS <= cnn.op_flops
    assert "too small" in mlp.note() and cnn.note().startswith("4 CPU threads")


def test_asked_for_threads_win_and_a_gpu_keeps_torchs_count(four_cores):
    model = _meta_model("cnn", get_modality("image").example_input((1, 28, 28)))
    assert choose_threads(model, torch.empty(64, 1, 28, 28), CPU, requested=3).threads == 3
    assert choose_threads(model, torch.empty(64, 1, 28, 28), torch.device("cuda")).threads == 4


def test_a_model_that_cannot_be_sized_keeps_torchs_default(four_cores):
    class DataDependent(nn.Module):
        def forward(self, x):
            return x[x > 0]  # a shape only values decide: no meta kernel can size it

    choice = choose_threads(DataDependent(), torch.empty(8, 3), CPU)
    assert choice.threads == 4 and choice.op_flops is None and "could not be sized" in choice.reason


def test_the_choice_is_recorded_and_honoured(tmp_path):
    run = deepfit.train("iris", out=tmp_path / "auto", epochs=1, progress=False)
    record = json.loads((run.path / "config.json").read_text())["train"]
    assert record["threads"] == 1 and "too small" in record["threads_reason"]
    assert torch.get_num_threads() == 1
    assert any("CPU thread" in d for d in run.notes.decisions)
    run = deepfit.train("iris", out=tmp_path / "asked", epochs=1, threads=2, progress=False)
    assert json.loads((run.path / "config.json").read_text())["train"]["threads"] == 2
    assert torch.get_num_threads() == 2


def test_a_resumed_run_keeps_its_thread_count(tmp_path, monkeypatch):
    original = Trainer._step

    def stop_after_three(self, loss):
        original(self, loss)
        if self.state.step + 1 == 3:
            self.stop_requested = True

    with monkeypatch.context() as patch:  # started where the rule gave 2 threads
        patch.setattr(Trainer, "_step", stop_after_three)
        patch.setattr(threads_module, "OP_FLOPS_FOR_THREADS", 0.0)
        patch.setattr(threads_module, "default_threads", lambda: 2)
        with pytest.raises(TrainingInterrupted):
            deepfit.train("iris", out=tmp_path / "run", epochs=3, progress=False)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["threads"] == 2
    torch.set_num_threads(1)  # the rule would now say 1; the run keeps its 2
    run = deepfit.train(resume=tmp_path / "run", progress=False)
    assert torch.get_num_threads() == 2
    assert json.loads((run.path / "config.json").read_text())["train"]["threads"] == 2
    assert any("as the run was started with" in d for d in run.notes.decisions)
