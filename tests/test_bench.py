"""deepfit.benchmark and `deepfit benchmark` (bench.py): every registered model in the quick mode,
counts checked against hand counts, the CLI's errors and outputs, a trained run's benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import deepfit
from deepfit.cli import main
from deepfit.errors import SettingsError
from deepfit.modalities import get_modality
from deepfit.models import OutputSpec, available, create, modalities
from deepfit.tools.benchmark.measure import Latency, count_params, flops_per_sample, saved_size

MB = 2**20


@pytest.fixture(autouse=True)
def one_thread():
    """A quick benchmark's batches are tiny: on a busy 2-core machine a second thread only adds
    synchronisation (conftest sets 2)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

# the image models take seconds each even at 8 × 8 pixels (most of it AdamW over their weights)
MODELS = [pytest.param(name, marks=pytest.mark.slow) if modalities(name) == ("image",) else name
          for name in [*available("classification"), "transfer:resnet18"]]


@pytest.mark.parametrize("name", MODELS)
def test_every_model_benchmarks(name: str) -> None:
    r = deepfit.benchmark(name, quick=True)
    assert r.model == name and r.data == "synthetic" and r.device == "cpu"
    assert len(r.train_samples_per_s.values) == r.repeats == 2
    assert all(v > 0 for v in r.train_samples_per_s.values)
    assert r.train_samples_per_s.min <= r.train_samples_per_s.median <= r.train_samples_per_s.max
    assert set(r.latency_ms) == {"batch_1", f"batch_{r.batch_size}"}
    for lat in r.latency_ms.values():
        assert 0 < lat.p50 <= lat.p95 <= lat.p99
    # the same model built by hand: its parameters, and its safetensors bytes
    modality = modalities(name)[0]
    model = create(name, get_modality(modality).example_input(get_modality(modality).quick_shape), OutputSpec("classification", 10))
    assert r.params == r.trainable_params == sum(p.numel() for p in model.parameters())
    tensor_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert 0 < r.weights_mb * MB - tensor_bytes < 1024 + 200 * len(model.state_dict())  # + header
    assert r.flops_per_sample > 0 and r.peak_memory_mb > 0
    quick = list(get_modality(modality).quick_shape)
    # text: one sample is its n_text × length token ids side by side, a flat row
    assert r.input_shape == ([quick[0] * quick[1]] if modality == "text" else quick)


def test_flops_of_a_linear_layer_are_a_hand_count() -> None:
    assert flops_per_sample(nn.Linear(13, 5), torch.randn(1, 13)) == 2 * 13 * 5
    conv = nn.Conv2d(3, 4, kernel_size=3, padding=1)  # 2 × k·k·C_in per output value
    assert flops_per_sample(conv, torch.randn(1, 3, 6, 6)) == 2 * 3 * 3 * 3 * 4 * 6 * 6


def test_a_small_mlp_end_to_end_is_a_hand_count() -> None:
    """7 features → Linear(7, 5), BatchNorm(5) → head Linear(5, 3): the counter counts the
    matrix products (2 FLOPs a multiply-add), not the normalisation."""
    r = deepfit.benchmark("mlp", hidden=(5,), input_shape=(7,), classes=3, quick=True)
    assert r.flops_per_sample == 2 * (7 * 5 + 5 * 3)
    assert r.params == (7 * 5 + 5) + 2 * 5 + (5 * 3 + 3)
    assert r.input_shape == [7] and r.n_outputs == 3


def test_fused_kernels_do_not_hide_flops() -> None:
    """An LSTM runs oneDNN's fused kernel and a transformer its fast path in eval mode on the
    CPU; the counter sees neither, so it must count with the plain kernels."""
    spec = get_modality("sequence").example_input((16, 3))
    lstm = create("lstm", spec, OutputSpec("classification", 2))
    cell_flops = 2 * 4 * (3 + 64) * 64 * 16  # the first layer's gates over 16 steps, at least
    assert flops_per_sample(lstm, torch.randn(1, 16, 3)) > cell_flops
    transformer = create("transformer", spec, OutputSpec("classification", 2)).eval()
    linears = sum(2 * m.in_features * m.out_features for m in transformer.modules()
                  if isinstance(m, nn.Linear) and m.out_features != 2)
    assert flops_per_sample(transformer, torch.randn(1, 16, 3)) > linears  # per step, ×16 really


def test_shared_and_frozen_parameters() -> None:
    tied = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    tied[1].weight = tied[0].weight  # shared: counted and stored once
    tied[0].bias.requires_grad_(False)
    assert count_params(tied) == (16 + 4 + 4, 16 + 4)
    assert 3 * 4 * 4 <= saved_size(tied) - 16 * 4 < 3 * 4 * 4 + 1024


def test_latency_percentiles() -> None:
    lat = Latency.of([0.001] * 98 + [0.010, 0.100])
    assert lat.p50 == pytest.approx(1.0) and lat.calls == 100
    assert lat.p50 <= lat.p95 < lat.p99 <= 100.0


def test_input_shape_and_bad_settings() -> None:
    with pytest.raises(SettingsError, match=r"\[C, H, W\]"):
        deepfit.benchmark("cnn", input_shape=(8, 8), quick=True)
    with pytest.raises(SettingsError, match="unknown model"):
        deepfit.benchmark("nope", quick=True)
    with pytest.raises(SettingsError, match="at least 2"):
        deepfit.benchmark("mlp", batch_size=1, quick=True)
    with pytest.raises(SettingsError, match="fp16 needs a CUDA"):
        deepfit.benchmark("mlp", precision="fp16", device="cpu", quick=True)
    assert modalities("resnet") == modalities("resnet18")  # an alias


def test_real_rows_of_a_source() -> None:
    r = deepfit.benchmark("mlp", source="breast_cancer", quick=True, precision="bf16")
    assert r.data == "breast_cancer" and r.input_shape == [30] and r.n_outputs == 2
    assert r.precision == "bf16" and r.train_samples_per_s.median > 0


def test_cli_cuda_without_cuda_is_a_named_error(monkeypatch, capsys) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["benchmark", "--model", "resnet50", "--batch-size", "64", "--device", "cuda"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("deepfit: error:") and "cuda" in err


def test_cli_json(capsys) -> None:
    assert main(["benchmark", "--model", "mlp", "--quick", "--repeats", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "mlp" and data["repeats"] == 3
    assert len(data["train_samples_per_s"]["values"]) == 3
    assert {"p50", "p95", "p99"} <= set(data["latency_ms"]["batch_1"])
    for key in ("params", "trainable_params", "weights_mb", "flops_per_sample", "peak_memory_mb"):
        assert data[key] > 0
    assert data["machine"]["torch"] == torch.__version__


def test_cli_table_names_the_machine(capsys) -> None:
    assert main(["benchmark", "--model", "mlp", "--quick"]) == 0
    out = capsys.readouterr().out
    assert f"torch {torch.__version__}" in out and "precision 32" in out and "device cpu" in out
    assert "cores" in out and "train samples/s" in out and "p99" in out


def test_a_trained_run_with_its_preprocessing(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    deepfit.train("breast_cancer", epochs=2, report=False, out=run, progress=False)
    weights = (run / "model.safetensors").read_bytes()
    assert main(["benchmark", str(run), "--quick", "--profile-memory"]) == 0
    assert "results written to" in capsys.readouterr().out
    saved = json.loads((run / "benchmark.json").read_text())
    assert saved["model"] == "mlp" and saved["input_shape"] == [30]
    assert "preprocessing" in saved["data"]
    for lat in saved["predict_latency_ms"].values():  # raw rows → preprocessing → model
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert (run / "model.safetensors").read_bytes() == weights  # the run's model is not trained
    trace = json.loads((run / "memory_trace.json").read_text())
    assert trace["traceEvents"] and saved["memory_top"]
    assert saved["memory_trace"] == str(run / "memory_trace.json")
    assert not list(run.glob(".*tmp"))  # nothing half-written


def test_profile_memory_into_out(tmp_path: Path) -> None:
    r = deepfit.benchmark("cnn1d", quick=True, profile_memory=True, out=tmp_path / "b")
    assert Path(r.memory_trace).is_file() and r.memory_trace.endswith("memory_trace.json")
    assert json.loads(Path(r.memory_trace).read_text())["traceEvents"]
    assert r.memory_top and all(e["calls"] >= 1 for e in r.memory_top)
    assert (tmp_path / "b" / "benchmark.json").is_file()


def test_run_and_model_together_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not both"):
        deepfit.benchmark("mlp", run=tmp_path, quick=True)
    assert main(["benchmark", str(tmp_path / "missing")]) == 2


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux only: VmHWM reset")
def test_peak_rss_is_reset_before_measuring() -> None:
    from deepfit.tools.benchmark.memory import _proc_status, peak_memory, reset_peak_memory

    big = torch.ones(300 * MB // 4)  # an earlier peak, 300 MB above now (a large block is unmapped)
    del big
    before = reset_peak_memory(torch.device("cpu"))
    small = torch.ones(60 * MB // 4)
    now = _proc_status("VmRSS")
    peak, kind = peak_memory(torch.device("cpu"))
    del small
    assert kind == "rss_peak"
    assert before <= now <= peak < before + 250, (before, now, peak)  # not the 300 MB before


def test_threads_and_random_state_are_left_as_they_were() -> None:
    torch.set_num_threads(2)
    state = torch.get_rng_state()
    deepfit.benchmark("mlp", quick=True, threads=1, seed=3)
    assert torch.get_num_threads() == 2 and torch.equal(torch.get_rng_state(), state)


def test_resnet18_at_its_natural_shape_matches_torchvision_published_figures() -> None:
    """224 × 224 RGB and 1000 classes: torchvision lists 11,689,512 parameters and 1.81 GFLOPS
    (multiply-adds), i.e. 3.63 × 10⁹ FLOPs."""
    spec = get_modality("image").example_input()
    assert spec.shape == (3, 224, 224)
    model = create("resnet18", spec, OutputSpec("classification", 1000))
    assert count_params(model) == (11_689_512, 11_689_512)
    assert flops_per_sample(model, torch.randn(1, *spec.shape)) / 1e9 == pytest.approx(3.63, abs=0.01)
