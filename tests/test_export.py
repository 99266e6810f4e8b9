"""deepfit export: every registered model family exports to ONNX with parity on the run's own
preprocessed test rows; preprocess.json alone (numpy + onnxruntime) reproduces the Predictor's
predictions from raw rows; a planted mismatch is the named error and leaves nothing; pt2 round
trip; the fallback exporter is named; the CLI prints what the API returns."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch

import deepfit
from deepfit.deploy import formats
from deepfit.errors import ExportParityError, MissingExtraError, SettingsError
from deepfit.models.registry import available, modalities
from generated import motif_sequences

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = {"epochs": 2, "progress": False, "report": False, "check": False}
# over ~10 s here (the dynamo exporter's tracing, mostly): @slow, still run by make test
SLOW = {"resnet18", "resnet34", "resnet50", "transfer:resnet18", "cnn", "gru", "lstm"}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """One small source file per modality: a CSV with numbers, categories (one-hot and embedded)
    and missing values; 16×16 RGB images in an .npz; motif sequences in an .npz."""
    root = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame({"age": rng.normal(40, 12, n).round(1), "income": rng.lognormal(3, 0.5, n).round(2),
                          "city": rng.choice(["paris", "lyon", "nice"], n),
                          "shop": rng.choice([f"shop{i:02d}" for i in range(14)], n)})
    frame["label"] = np.where(frame.age.fillna(40) + 8 * (frame.city == "paris") > 44, "yes", "no")
    frame.loc[rng.choice(n, 25, replace=False), "age"] = np.nan
    frame.loc[rng.choice(n, 20, replace=False), "city"] = np.nan
    frame.to_csv(root / "table.csv", index=False)
    y = rng.integers(0, 2, 160)
    images = rng.integers(0, 160, (160, 16, 16, 3)).astype(np.uint8) + (y * 90)[:, None, None, None].astype(np.uint8)
    np.savez(root / "images.npz", X=images, y=y)
    X, labels = motif_sequences(n=160, length=16)
    np.savez(root / "sequences.npz", X=X, y=labels)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"])
    texts = [" ".join(rng.choice(words, 6)) + (" good" if i % 2 else " bad") + f" {i}" for i in range(n)]
    pd.DataFrame({"review": texts, "label": ["pos" if i % 2 else "neg" for i in range(n)]}).to_csv(
        root / "text.csv", index=False)
    return {"tabular": root / "table.csv", "image": root / "images.npz", "sequence": root / "sequences.npz",
            "text": root / "text.csv"}


def _train(sources, tmp_path, model, **extra):
    modality = modalities(model)[0]
    target = {"target": "label"} if modality in ("tabular", "text") else {"modality": modality}
    return deepfit.train(str(sources[modality]), model=model, out=tmp_path / "run", **target, **(TINY | extra))


def _independent_parity(run, result):
    """The exported model run here, by onnxruntime, on the test rows the Predictor preprocesses:
    the export's own check computed again, not read from its record."""
    from deepfit.lifecycle.held_out import held_out_rows

    held = held_out_rows(run.path, run.predictor)
    inputs = run.predictor.features(held.X).numpy()
    session = ort.InferenceSession(str(result.model), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": inputs})[0]
    expected = run.predictor.outputs(held.X).numpy()
    assert got.shape == expected.shape and len(got) == len(held.X) == result.rows
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())
    return got, expected


FAMILIES = [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name
            for name in [*available("classification"), "transfer:resnet18"] if name != "resnet50"]


@pytest.mark.parametrize("model", FAMILIES)
def test_every_family_exports_to_onnx_with_parity_on_its_test_rows(sources, tmp_path, model):
    extra = {"weights": "none"} if model.startswith("transfer:") else {}
    run = _train(sources, tmp_path, model, **extra)
    result = deepfit.export(run.path)
    assert result.exporter == "dynamo" and result.fallback is None  # the dynamo exporter works for all
    assert result.max_abs_diff <= result.tolerance and result.rtol == 1e-4 and result.tolerance >= 1e-4
    assert result.agreement == 1.0 and "test split" in result.rows_from and not result.warnings
    got, expected = _independent_parity(run, result)
    assert result.max_abs_diff == pytest.approx(float(np.abs(got - expected).max()), abs=1e-7)
    record = json.loads(result.report.read_text())
    assert record["max_abs_diff"] == result.max_abs_diff and record["model_name"] == model
    assert sorted(p.name for p in result.path.iterdir()) == ["export.json", "model.onnx", "preprocess.json"]


@pytest.mark.slow
def test_resnet50_exports(sources, tmp_path):
    run = _train(sources, tmp_path, "resnet50", epochs=1)
    _independent_parity(run, deepfit.export(run.path))


# ----------------------------------------------------------------- raw rows, numpy only
def _tabular_inputs(rows: list[dict[str, str]], spec: dict) -> np.ndarray:
    """preprocess.json's tabular rules, in numpy: raw CSV fields (text) → the network's input."""
    out = np.zeros((len(rows), spec["n_features"]), np.float32)
    numeric = {c["name"]: c for c in spec["numeric"]}
    categorical = {c["name"]: c for c in spec["categorical"]}

    def number(text):
        return float(text) if text.strip() not in ("", "NA", "NaN", "nan") else math.nan

    def slot(column, text):
        text = text.strip()
        text = "<missing>" if text in ("", "NA", "NaN", "nan") else text
        return column["categories"].index(text) + 1 if text in column["categories"] else 0

    for i, row in enumerate(rows):
        for block in spec["layout"]:
            name, j = block["column"], block["start"]
            if block["kind"] == "standardised":
                c, x = numeric[name], number(row[name])
                z = ((c["impute"] if math.isnan(x) else x) - c["mean"]) / c["std"]
                out[i, j] = np.clip(z, -spec["clip"], spec["clip"])
            elif block["kind"] == "missing_indicator":
                out[i, j] = math.isnan(number(row[name]))
            elif block["kind"] == "onehot":
                out[i, j + slot(categorical[name], row[name])] = 1.0
            else:
                out[i, j] = slot(categorical[name], row[name])
    return out


def _decide(output: np.ndarray, document: dict) -> list:
    """preprocess.json's output rule: softmax, then the threshold (binary) or argmax."""
    z = output - output.max(axis=1, keepdims=True)
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    classes, threshold = document["classes"], document["threshold"]
    codes = (proba[:, 1] >= threshold).astype(int) if threshold is not None and len(classes) == 2 \
        else proba.argmax(axis=1)
    return [classes[k] for k in codes], proba


def test_preprocess_json_reproduces_predictions_from_raw_table_rows(sources, tmp_path):
    run = _train(sources, tmp_path, "mlp")
    result = deepfit.export(run.path)
    document = json.loads(result.preprocess.read_text())
    spec = document["preprocess"]
    assert spec["modality"] == "tabular" and spec["columns"] == ["age", "income", "city", "shop"]
    kinds = {b["kind"] for b in spec["layout"]}
    assert kinds == {"standardised", "missing_indicator", "onehot", "embedding_index"}  # all of them
    with open(sources["tabular"], newline="") as f:
        rows = list(csv.DictReader(f))
    rows.append({"age": "", "income": "3.5", "city": "marseille", "shop": "shop99"})  # unseen values
    assert sum(r["age"] == "" for r in rows) > 20 and sum(r["city"] == "" for r in rows) > 10
    session = ort.InferenceSession(str(result.model), providers=["CPUExecutionProvider"])
    output = session.run(None, {"input": _tabular_inputs(rows, spec)})[0]
    labels, proba = _decide(output, document)
    frame = pd.read_csv(sources["tabular"]).drop(columns="label")
    frame.loc[len(frame)] = [np.nan, 3.5, "marseille", "shop99"]
    expected = run.predictor.predict_frame(frame)
    assert labels == list(expected["prediction"])
    np.testing.assert_allclose(proba, expected[[f"proba_{c}" for c in document["classes"]]], atol=1e-5)


def test_preprocess_json_reproduces_predictions_from_raw_images(sources, tmp_path):
    run = _train(sources, tmp_path, "cnn")
    result = deepfit.export(run.path)
    document = json.loads(result.preprocess.read_text())
    spec = document["preprocess"]
    assert (spec["channels"], spec["height"], spec["width"], spec["channel_order"]) == (3, 16, 16, "RGB")
    raw = np.load(sources["image"])["X"][:50]  # [N, H, W, C] uint8, as the file holds them
    x = raw.transpose(0, 3, 1, 2).astype(np.float32) * np.float32(spec["scale"])
    x = (x - np.float32(spec["mean"])[None, :, None, None]) / np.float32(spec["std"])[None, :, None, None]
    session = ort.InferenceSession(str(result.model), providers=["CPUExecutionProvider"])
    labels, _ = _decide(session.run(None, {"input": x.astype(np.float32)})[0], document)
    assert labels == list(run.predictor.predict(raw))


def test_preprocess_json_reproduces_predictions_from_raw_sequences(sources, tmp_path):
    run = _train(sources, tmp_path, "cnn1d")
    result = deepfit.export(run.path)
    document = json.loads(result.preprocess.read_text())
    spec = document["preprocess"]
    raw = np.load(sources["sequence"])["X"][:60].astype(np.float64)  # [N, T, C] as the file holds them
    assert (spec["length"], spec["channels"]) == raw.shape[1:] and spec["clip"] == 1e6
    raw[0, 3, 0], raw[1, 5, -1] = np.nan, np.inf  # a missing and an infinite value
    with np.errstate(invalid="ignore"):
        z = (raw - np.array(spec["mean"])) / np.array(spec["std"])
    z = np.clip(np.where(np.isfinite(z), z, 0.0), -spec["clip"], spec["clip"]).astype(np.float32)
    session = ort.InferenceSession(str(result.model), providers=["CPUExecutionProvider"])
    labels, proba = _decide(session.run(None, {"input": z})[0], document)
    assert labels == list(run.predictor.predict(raw))
    np.testing.assert_allclose(proba, run.predictor.predict_proba(raw), atol=1e-5)


# ----------------------------------------------------------------- failures and fallbacks
def test_a_parity_failure_is_the_named_error_and_leaves_nothing(sources, tmp_path, monkeypatch):
    run = _train(sources, tmp_path, "mlp")
    real = formats.runner

    def perturbed(*args, **kwargs):
        run_it = real(*args, **kwargs)
        return lambda x: run_it(x) + np.float32(0.01)  # every output off by 0.01

    monkeypatch.setattr(formats, "runner", perturbed)
    out = tmp_path / "exported"
    with pytest.raises(ExportParityError, match=r"dynamo exporter's model differs .* 0\.01.*torchscript"):
        deepfit.export(run.path, out=out)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging left
    with pytest.raises(ExportParityError):  # pt2 too
        deepfit.export(run.path, format="pt2", out=out)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_the_torchscript_exporter_is_the_named_fallback(sources, tmp_path, monkeypatch):
    run = _train(sources, tmp_path, "mlp")
    real = formats.write

    def no_dynamo(fmt, exporter, *args, **kwargs):
        if exporter == "dynamo":
            raise RuntimeError("planted: dynamo cannot export this")
        return real(fmt, exporter, *args, **kwargs)

    monkeypatch.setattr(formats, "write", no_dynamo)
    result = deepfit.export(run.path)
    assert result.exporter == "torchscript" and "planted: dynamo cannot" in result.fallback
    assert json.loads(result.report.read_text())["exporter"] == "torchscript"
    assert result.max_abs_diff <= result.tolerance
    _independent_parity(run, result)


def test_pt2_round_trip_with_a_dynamic_batch(sources, tmp_path):
    run = _train(sources, tmp_path, "gru")
    result = deepfit.export(run.path, format="pt2")
    assert result.exporter == "torch.export" and result.model.name == "model.pt2" and result.opset is None
    module = torch.export.load(str(result.model)).module()
    X = np.load(sources["sequence"])["X"]
    for n in (1, 7):
        inputs = run.predictor.features(X[:n])
        torch.testing.assert_close(module(inputs), run.predictor.outputs(X[:n]), atol=1e-5, rtol=1e-4)


def test_a_fixed_batch_onnx_and_an_in_memory_run(tmp_path, mixed_frame):
    run = deepfit.train(mixed_frame, target="label", model="mlp", out=tmp_path / "run", **TINY)
    result = deepfit.export(run.path, dynamic_batch=False, opset=18)
    assert result.opset == 18 and not result.dynamic_batch
    assert "synthetic" in result.rows_from and "in-memory" in result.warnings[0]
    session = ort.InferenceSession(str(result.model), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == 1
    rows = run.predictor.features(mixed_frame.drop(columns="label").iloc[:3]).numpy()
    np.testing.assert_allclose(session.run(None, {"input": rows[:1]})[0],
                               run.predictor.outputs(mixed_frame.iloc[:1]).numpy(), atol=1e-5)


def test_bad_settings_and_a_missing_extra(sources, tmp_path, monkeypatch):
    run = _train(sources, tmp_path, "mlp")
    for bad, match in (({"format": "tflite"}, "--format must be one of onnx, pt2"),
                       ({"format": "pt2", "opset": 17}, "--opset is an ONNX setting"),
                       ({"opset": 3}, "--opset must be a whole number"),
                       ({"exporter": "torch.export"}, "onnx format's exporter is one of")):
        with pytest.raises(SettingsError, match=match):
            deepfit.export(run.path, **bad)
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'deepfit\[export\]'"):
        deepfit.export(run.path)
    assert not (run.path / "export-onnx").exists()


def test_the_command_prints_the_parity_and_replaces_an_earlier_export(sources, tmp_path, capsys, keep_logging):
    from deepfit.cli.app import main

    run = _train(sources, tmp_path, "cnn1d")
    assert main(["export", str(run.path), "--format", "pt2"]) == 0
    assert main(["export", str(run.path), "--format", "pt2"]) == 0  # an earlier export: replaced
    said = capsys.readouterr().out
    assert "torch.export, dynamic batch" in said and "parity with the Predictor on all" in said
    assert "predicted classes agree on 100.0%" in said
    assert main(["export", str(run.path), "--out", str(run.path / "checkpoints")]) == 2  # not an export
    assert "already exists" in capsys.readouterr().err


def test_a_regression_run_exports_its_target_scale(tmp_path):
    run = deepfit.train("diabetes", model="mlp", out=tmp_path / "run", **TINY)
    result = deepfit.export(run.path)
    assert result.agreement is None and result.max_abs_diff <= result.tolerance
    assert "the run's test split" in result.rows_from
    document = json.loads(result.preprocess.read_text())
    assert document["task"] == "regression" and document["classes"] is None
    from sklearn.datasets import load_diabetes

    X = load_diabetes(as_frame=True).data.iloc[:20]
    session = ort.InferenceSession(str(result.model), providers=["CPUExecutionProvider"])
    output = session.run(None, {"input": run.predictor.features(X).numpy()})[0][:, 0]
    scale = document["output"]
    np.testing.assert_allclose(output * scale["std"] + scale["mean"], run.predictor.predict(X), rtol=1e-4)


def test_a_run_trained_on_a_relative_path_exports_from_another_directory(sources, tmp_path, monkeypatch):
    """config.json names an existing source by its absolute path, so the run's test split is
    rebuilt from any working directory (was: 'table.csv' looked up in the new one, synthetic rows)."""
    monkeypatch.chdir(sources["tabular"].parent)
    run = deepfit.train("table.csv", target="label", model="mlp", out=tmp_path / "run", **TINY)
    assert run.config["data"]["source"] == str(sources["tabular"].resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = deepfit.export(run.path)
    assert "the run's test split" in result.rows_from and not result.warnings
    assert result.rows == run.config["data"]["split_sizes"]["test"]
