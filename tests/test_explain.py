"""deepfit explain: permutation importance finds the columns that matter and reports each
original column once; integrated gradients are complete (Captum's convergence delta) and pass
the model-randomisation test on a model that learned a real signal; images get overlays,
sequences a time × channel map; explain.json and the report's section are written; advise
--need-interpretability answers with numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import deepfit
from deepfit.cli import main
from deepfit.tools.explain.attributions import SIMILAR, integrated_gradients, rank_similarity
from generated import motif_sequences

pytestmark = pytest.mark.usefixtures("one_thread")
QUICK = {"epochs": 15, "patience": 5, "progress": False}
COMPLETE = 0.02  # |sum of attributions − (F(x) − F(baseline))| ≤ 2 % of the mean |F(x) − F(baseline)|


def _two_columns_matter(n: int = 800, seed: int = 0) -> pd.DataFrame:
    """y = 2·x0 − 1.5·x1 + noise; x2…x5 and the category `color` are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["color"] = rng.choice(["red", "green", "blue"], n)
    frame["y"] = 2.0 * X[:, 0] - 1.5 * X[:, 1] + rng.normal(0, 0.1, n)
    return frame


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    path = root / "table.csv"
    _two_columns_matter().to_csv(path, index=False)
    run = deepfit.train(str(path), target="y", out=root / "run", **QUICK)
    return run, deepfit.explain(run.path, repeats=3)


def test_permutation_importance_ranks_the_two_columns_that_matter_first(table_run):
    run, result = table_run
    importance = result["permutation_importance"]
    ranked = [c["column"] for c in importance["columns"]]
    assert ranked[:2] == ["x0", "x1"]  # the larger coefficient first
    means = {c["column"]: c["mean"] for c in importance["columns"]}
    assert means["x0"] > 0.5 and means["x1"] > 0.2
    assert all(abs(means[c]) < 0.05 for c in ("x2", "x3", "x4", "x5", "color"))
    assert all(c["std"] >= 0 for c in importance["columns"]) and importance["repeats"] == 3
    assert importance["top3_share"] > 0.95 and importance["metric"] == "r2"
    # the unshuffled score is the run's own test score: the test split was rebuilt exactly
    assert importance["score"] == pytest.approx(run.metrics["r2"], abs=1e-6)  # float32 sums


def test_a_categorys_one_hot_slots_are_one_column(table_run):
    run, result = table_run
    pre = run.predictor.preprocessor
    assert any(c.encoding == "onehot" and c.width == 4 for c in pre.categorical)  # 3 + unknown
    originals = [f"x{i}" for i in range(6)] + ["color"]
    assert sorted(c["column"] for c in result["permutation_importance"]["columns"]) == sorted(originals)
    ig = result["integrated_gradients"]
    assert sorted(ig["mean_abs"]) == sorted(originals)
    assert all(sorted(row["attributions"]) == sorted(originals) for row in ig["rows"])
    assert pre.n_features == 10 and len(ig["rows"]) == 10  # 10 model inputs, 7 columns; --rows default


def test_integrated_gradients_are_complete(table_run):
    run, result = table_run
    checked = result["integrated_gradients"]["completeness"]
    assert checked["max_relative_delta"] <= COMPLETE
    # by hand: each row's column attributions sum to F(x) − F(0) of the model
    predictor = run.predictor
    X = pd.read_csv(run.config["data"]["source"]).drop(columns="y").iloc[:20]
    inputs = predictor.features(X)
    found = integrated_gradients(predictor.model, inputs, 0, predictor.preprocessor.n_dense)
    with torch.no_grad():
        change = (predictor.model(inputs) - predictor.model(torch.zeros_like(inputs)))[:, 0].numpy()
    scale = np.abs(change).mean()
    assert np.abs(found.values.sum(axis=1) - change).max() <= COMPLETE * scale
    assert np.allclose(found.values.sum(axis=1) - change, found.delta, atol=1e-4)


def test_the_randomisation_check_is_low_on_a_trained_model(table_run):
    _, result = table_run
    sanity = result["sanity"]
    assert sanity["passed"] and sanity["spearman_abs"] < SIMILAR and sanity["samples"] == 10
    assert "depends on what the model learned" in sanity["text"]
    assert not any("re-initialised" in w for w in result["warnings"])


def test_the_randomisation_check_flags_explanations_alike():
    same = np.abs(np.random.default_rng(0).normal(size=(8, 12)))
    found = rank_similarity(same, same * 3.0)  # the same ranking: a model explained alike
    assert found["spearman_abs"] == pytest.approx(1.0) and not found["passed"]
    assert "do not trust them" in found["text"]
    low = rank_similarity(same, np.random.default_rng(1).normal(size=(8, 12)))
    assert abs(low["spearman_abs"]) < SIMILAR and low["passed"]


def test_explain_json_and_the_reports_section(table_run):
    run, result = table_run
    saved = json.loads((run.path / "explain.json").read_text())
    assert saved["permutation_importance"]["columns"][0]["column"] == "x0"
    assert saved["sanity"]["spearman_abs"] == pytest.approx(result["sanity"]["spearman_abs"])
    assert saved["integrated_gradients"]["baseline"].startswith("the training mean")
    assert {p.rsplit("/", 1)[-1] for p in saved["plots"]} == {"importance.png", "attributions.png"}
    assert all((run.path / "explain" / n).read_bytes()[:4] == b"\x89PNG" for n in ("importance.png", "attributions.png"))
    page = (run.path / "report.html").read_text()
    assert "<h2>Explanations</h2>" in page and "Permutation importance" in page
    assert "model randomisation" in page and page.count("data:image/png;base64") >= 3


def test_the_cli_prints_the_tables_and_json(table_run, tmp_path, capsys, keep_logging):
    run, _ = table_run
    assert main(["explain", str(run.path), "--rows", "3", "--repeats", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "permutation importance" in out and "x0" in out and "model randomisation" in out
    assert (tmp_path / "explain.json").exists() and (tmp_path / "explain" / "importance.png").exists()
    assert main(["explain", str(run.path), "--rows", "2", "--repeats", "1", "--json", "--out", str(tmp_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["integrated_gradients"]["rows"]) == 2
    assert main(["explain", str(run.path), "--rows", "0"]) == 2  # a user error: one line, code 2
    assert "rows must be a whole number" in capsys.readouterr().err


def test_an_image_run_gets_overlays_with_the_surest_mistakes(tmp_path):
    run = deepfit.train("digits", modality="image", out=tmp_path / "run", epochs=2, progress=False)
    result = deepfit.explain(run.path, rows=12)
    assert "permutation_importance" not in result  # pixels are no columns
    ig = result["integrated_gradients"]
    assert ig["shape"] == [8, 8] and len(ig["rows"]) == 12
    reasons = [r["reason"] for r in ig["rows"]]
    mistakes = [r for r in ig["rows"] if r["reason"] == "confident mistake"]
    assert all(r["true"] != r["predicted"] for r in mistakes) and 0 < len(mistakes) <= 3
    assert reasons.count("sample of its class") == 12 - len(mistakes)
    sure = [r["probability"] for r in mistakes]
    assert sure == sorted(sure, reverse=True)
    assert ig["completeness"]["max_relative_delta"] <= COMPLETE
    assert (run.path / "explain" / "overlays.png").read_bytes()[:4] == b"\x89PNG"
    assert "Integrated gradients over test images" in (run.path / "report.html").read_text()


def test_a_sequence_run_gets_a_time_by_channel_attribution(tmp_path):
    X, y = motif_sequences(300)
    X = np.concatenate([X, np.random.default_rng(2).normal(size=X.shape)], axis=2)  # [N, 32, 2]
    np.savez(tmp_path / "seq.npz", X=X, y=y)
    run = deepfit.train(str(tmp_path / "seq.npz"), out=tmp_path / "run", epochs=5, progress=False)
    result = deepfit.explain(run.path, rows=16)
    ig = result["integrated_gradients"]
    assert ig["shape"] == [32, 2] and np.shape(ig["time_channel"]) == (32, 2)
    assert sum(ig["channel_share"]) == pytest.approx(1.0) and len(ig["step_share"]) == 32
    assert ig["channel_share"][0] > ig["channel_share"][1]  # the motif is in channel 0
    assert ig["completeness"]["max_relative_delta"] <= COMPLETE
    assert (run.path / "explain" / "time_channels.png").read_bytes()[:4] == b"\x89PNG"


def test_advise_need_interpretability_answers_with_numbers(tmp_path):
    frame = _two_columns_matter(500, seed=1)
    advice = deepfit.advise(frame, target="y", out=tmp_path / "a", need_interpretability=True,
                            epochs=6, patience=3, budget_seconds=600)
    item = next(i for i in advice.checklist if i.criterion == "interpretability not required")
    assert not item.passed
    found = advice.evidence["interpretability"]
    assert found["top3_share"] > 0.95 and found["concentrated"]
    assert [c["column"] for c in found["importance"]["columns"][:2]] == ["x0", "x1"]
    assert "carry" in item.evidence and f"{found['top3_share']:.0%}" in item.evidence
    assert "linear" in item.evidence and "r2" in item.evidence  # the baselines' scores, in numbers
    saved = json.loads((tmp_path / "a" / "advise.json").read_text())
    assert saved["evidence"]["interpretability"]["baseline_close"] == found["baseline_close"]


def test_without_captum_the_error_names_the_extra(table_run, monkeypatch, tmp_path):
    import sys

    from deepfit.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "captum.attr", None)  # import captum.attr fails
    with pytest.raises(MissingExtraError, match=r"deepfit\[explain\]"):
        deepfit.explain(table_run[0].path, repeats=1, out=tmp_path)


def test_other_labelled_data_or_an_in_memory_run(table_run, tmp_path):
    from deepfit.errors import SettingsError

    fresh = tmp_path / "fresh.csv"
    _two_columns_matter(200, seed=5).to_csv(fresh, index=False)
    result = deepfit.explain(table_run[0].path, str(fresh), repeats=2, out=tmp_path / "e")
    assert result["rows"] == 200 and result["held_out"].startswith(str(fresh))
    assert result["permutation_importance"]["columns"][0]["column"] == "x0"
    run = deepfit.train(_two_columns_matter(300), target="y", out=tmp_path / "mem", epochs=2, progress=False)
    with pytest.raises(SettingsError, match="in-memory data"):
        deepfit.explain(run.path)


def test_an_embedded_category_and_a_date_are_one_column_each(tmp_path):
    rng = np.random.default_rng(0)
    n = 500
    age = rng.normal(40, 12, n)
    shop = rng.choice([f"shop{i:02d}" for i in range(30)], n)  # > 10 values: an embedding
    day = (pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D")).strftime("%Y-%m-%d")
    score = age / 10 + (np.array([int(s[-2:]) for s in shop]) % 3) + rng.normal(0, 0.2, n)
    frame = pd.DataFrame({"age": age, "shop": shop, "day": day,
                          "label": np.where(score > np.median(score), "yes", "no")})
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    run = deepfit.train(str(tmp_path / "mixed.csv"), target="label", out=tmp_path / "run", epochs=5,
                        progress=False)
    pre = run.predictor.preprocessor
    assert [c.encoding for c in pre.categorical] == ["embedding"] and len(pre.dates) == 1
    result = deepfit.explain(run.path, repeats=2, rows=6)
    assert sorted(c["column"] for c in result["permutation_importance"]["columns"]) == ["age", "day", "shop"]
    ig = result["integrated_gradients"]
    assert sorted(ig["mean_abs"]) == ["age", "day", "shop"] and ig["not_attributed"] == ["shop"]
    assert all(row["attributions"]["shop"] is None for row in ig["rows"])  # no gradient reaches an index
    assert ig["completeness"]["max_relative_delta"] <= COMPLETE  # with the index held at its value
