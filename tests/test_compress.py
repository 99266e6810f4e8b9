"""deepfit.compress: int8 quantisation, pruning and distillation into new run directories, checked
against the original's Predictor, hand-computed losses and the reloaded runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import deepfit
from deepfit.deploy import shrink
from deepfit.errors import SettingsError


@pytest.fixture(scope="module")
def bc_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compress") / "bc"
    deepfit.train("breast_cancer", out=out, epochs=8, progress=False, report=False)
    return out


@pytest.mark.slow
def test_all_three_methods_on_breast_cancer(bc_run):
    summary = deepfit.compress(bc_run, methods="quantize,prune,distill", epochs=2, repeats=3)
    rows = {r["method"]: r for r in [summary["original"], *summary["results"]]}
    original = rows["original"]
    # the original's score is its own Predictor's accuracy on the held-out rows
    assert original["score"] == pytest.approx(json.loads((bc_run / "metrics.json").read_text())["accuracy"])
    # int8: within 1 point of the original, and smaller on disk
    assert abs(rows["quantize"]["score"] - original["score"]) <= 0.01
    assert rows["quantize"]["size_bytes"] < original["size_bytes"] / 2
    # pruned: the sparsity asked for, after reloading the saved run
    pruned = deepfit.load(bc_run.parent / "bc-pruned")
    assert shrink.sparsity_of(pruned.model) == pytest.approx(0.5, abs=0.01)
    assert rows["prune"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    # distilled: fewer parameters, its score reported and the same as its reloaded run's
    assert rows["distill"]["params"] < original["params"]
    distilled = json.loads((bc_run.parent / "bc-distilled" / "metrics.json").read_text())
    assert rows["distill"]["score"] == pytest.approx(distilled["accuracy"])
    assert 0.5 < rows["distill"]["score"] <= 1.0
    saved = json.loads((bc_run / "compress.json").read_text())
    assert [r["method"] for r in saved["results"]] == ["quantize", "prune", "distill"]
    assert "bc-int8" in (bc_run / "compress.html").read_text()
    for row in rows.values():
        assert row["latency_ms"]["batch_64"]["p50"] > 0 and row["latency_ms"]["batch_1"]["p95"] is not None


def test_int8_reload_predicts_as_the_model_in_memory(bc_run, tmp_path):
    teacher = deepfit.load(bc_run)
    in_memory, _ = shrink.quantize(teacher)
    summary = deepfit.compress(bc_run, methods=["quantize"], repeats=2, out=tmp_path)
    reloaded = deepfit.load(tmp_path / "bc-int8")
    assert reloaded.architecture["quantization"] == "dynamic_int8"
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer(as_frame=True).data
    assert torch.equal(in_memory.outputs(X), reloaded.outputs(X))
    assert (reloaded.predict(X) == teacher.predict(X)).mean() > 0.98
    assert summary["results"][0]["size_bytes"] < summary["original"]["size_bytes"]
    with pytest.raises(SettingsError, match="exists already"):  # nothing overwritten
        deepfit.compress(bc_run, methods="quantize", out=tmp_path)


def test_int8_and_distilled_on_digits(tmp_path):
    deepfit.train("digits", out=tmp_path / "digits", epochs=6, progress=False, report=False)
    summary = deepfit.compress(tmp_path / "digits", methods="quantize,distill", epochs=3, repeats=2)
    original, int8, distilled = summary["original"], *summary["results"]
    assert abs(int8["score"] - original["score"]) <= 0.01
    assert int8["size_bytes"] < original["size_bytes"]
    test_rows = _test_rows(tmp_path / "digits")
    assert deepfit.load(tmp_path / "digits-int8").evaluate(*test_rows)["accuracy"] == pytest.approx(int8["score"])
    # distilled: a smaller model on disk and in parameters, its score its reloaded run's own
    assert distilled["size_bytes"] < original["size_bytes"] and distilled["params"] < original["params"]
    student = deepfit.load(tmp_path / "digits-distilled")
    assert student.evaluate(*test_rows)["accuracy"] == pytest.approx(distilled["score"])
    assert 0.1 < distilled["score"] <= 1.0  # reported, and above chance (10 classes)


def _test_rows(run):
    from deepfit.config import split_settings
    from deepfit.core.io import read_json
    from deepfit.core.notes import Notes
    from deepfit.lifecycle.prepare import prepare_config

    record = read_json(run / "config.json")
    return prepare_config("digits", None, split_settings(dict(record["settings"])), Notes(live=False)).test_frame


def test_distillation_loss_is_hintons():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 3), torch.randn(6, 3)
    codes = torch.tensor([0, 1, 2, 0, 1, 2])
    T, alpha = 3.0, 0.6
    p_t = torch.softmax(teacher / T, dim=1)
    kl = (p_t * (p_t.log() - torch.log_softmax(student / T, dim=1))).sum(1).mean()
    expected = alpha * kl * T * T + (1 - alpha) * F.cross_entropy(student, codes)
    loss = shrink.DistillationLoss(T, alpha)
    packed = torch.cat([codes[:, None].double(), teacher.double()], dim=1)
    assert loss(student, packed).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss(student, codes).item() == pytest.approx(F.cross_entropy(student, codes).item())


def test_student_halves_the_widths_and_bad_methods_are_named(bc_run):
    assert list(shrink.student_settings("mlp", {"hidden": [128, 64, 32], "dropout": 0.3}, None)["hidden"]) == [64, 32, 16]
    with pytest.raises(SettingsError, match="compress methods are"):
        deepfit.compress(bc_run, methods="shrinkwrap")
    with pytest.raises(SettingsError, match="sparsity"):
        shrink.prune(deepfit.load(bc_run), None, None, 1.5, 1)
    assert np.isfinite(shrink.sparsity_of(deepfit.load(bc_run).model))


def test_the_compress_command_writes_runs_that_benchmark(bc_run, tmp_path):
    """The CLI end to end: `deepfit compress RUN --method quantize` writes RUN-int8, which
    `deepfit.benchmark` measures like any run: its float architecture's parameters and FLOPs,
    its int8 weights' size on disk."""
    from deepfit.cli.app import main

    assert main(["compress", str(bc_run), "--method", "quantize", "--repeats", "2",
                 "--out", str(tmp_path)]) == 0
    int8 = tmp_path / "bc-int8"
    assert json.loads((int8 / "model.json").read_text())["architecture"]["quantization"] == "dynamic_int8"
    original = deepfit.benchmark(run=bc_run, quick=True, progress=False)
    result = deepfit.benchmark(run=int8, quick=True, progress=False)
    assert result.params == original.params and result.flops_per_sample == original.flops_per_sample
    assert result.weights_mb < original.weights_mb / 2
    assert result.latency_ms["batch_1"].p50 > 0


def test_a_compressed_run_serves_its_own_predictions(bc_run, tmp_path):
    """RUN-int8 behind deepfit.serve.app: the int8 model's predictions and probabilities, and
    /models says it is quantised."""
    testclient = pytest.importorskip("fastapi.testclient", reason="the serve extra is not installed")
    from sklearn.datasets import load_breast_cancer

    import deepfit.serve

    deepfit.compress(bc_run, methods="quantize", repeats=2, out=tmp_path)
    int8 = deepfit.load(tmp_path / "bc-int8")
    X = load_breast_cancer(as_frame=True).data.iloc[:30]
    with testclient.TestClient(deepfit.serve.app([tmp_path / "bc-int8"])) as client:
        reply = client.post("/predict", json={"records": X.to_dict(orient="records")})
        info = client.get("/models").json()["models"][0]
    assert reply.status_code == 200 and reply.json()["model"] == "bc-int8"
    assert reply.json()["predictions"] == list(int8.predict(X))
    got = np.array([[row[str(c)] for c in int8.classes] for row in reply.json()["probabilities"]])
    np.testing.assert_allclose(got, int8.predict_proba(X), rtol=1e-6, atol=1e-7)
    assert info["quantization"] == "dynamic_int8"
