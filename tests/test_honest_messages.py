"""Messages that are true (issue 25, item 5): metrics within their range, a budget that cut a
model short said on the console, --threads taken by compare and advise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepfit.cli import main
from deepfit.evaluation import full_metrics
from deepfit.evaluation.full_metrics import classification_metrics, in_range, regression_metrics

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name, value, expected", [
    ("roc_auc", 1.0000000000000002, 1.0), ("accuracy", -1e-17, 0.0), ("f1_macro", 1 + 1e-9, 1.0),
    ("val_balanced_accuracy", 1.0000001, 1.0), ("log_loss", -1e-18, 0.0), ("r2", 1 + 1e-15, 1.0),
    ("r2", -3.5, -3.5), ("mae", 2.0, 2.0), ("n", 12, 12),
])
def test_metrics_are_clipped_to_their_range(name, value, expected):
    assert in_range(name, value) == expected


def test_an_auc_that_rounding_pushed_past_one_is_reported_as_one(monkeypatch):
    import sklearn.metrics

    monkeypatch.setattr(sklearn.metrics, "roc_auc_score", lambda *a, **k: 1.0000001)
    proba = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9]], dtype=torch.float64)
    m = classification_metrics(proba, torch.tensor([0, 1, 0, 1]))
    assert m["roc_auc"] == 1.0
    scores = [v for k, v in m.items() if isinstance(v, float) and k != "log_loss"]
    assert all(0.0 <= v <= 1.0 for v in scores)
    assert all(0.0 <= v <= 1.0 for c in m["per_class"].values() for k, v in c.items() if k != "support")
    assert regression_metrics(torch.arange(5.0), torch.arange(5.0))["r2"] == 1.0
    assert full_metrics.in_range("average_precision", 1.5) == 1.0


def test_compare_says_on_the_console_which_model_the_budget_cut_short(tmp_path, capsys):
    code = main(["compare", "digits", "--models", "mlp", "--budget-seconds", "0.3", "--threads", "1",
                 "--out", str(tmp_path / "c"), "-q"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0
    assert "note: mlp was cut short by the time budget after" in out and "--budget-seconds" in out


def test_advise_takes_threads_and_says_when_the_budget_cut_the_network(tmp_path, capsys):
    torch.set_num_threads(2)
    code = main(["advise", "iris", "--budget-seconds", "0.5", "--threads", "1",
                 "--out", str(tmp_path / "a"), "-q"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0 and torch.get_num_threads() == 1
    assert "was cut short by the time budget" in out
    torch.set_num_threads(1)


def test_evaluating_on_rows_the_model_saw_is_said_with_the_counts(tmp_path, capsys):
    """seen_rows.npz: the training and validation rows' hashes; evaluate counts exactly the rows
    of each split among those it is given (the test split's rows are not among them)."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    import deepfit
    from deepfit.lifecycle.seen_rows import seen_counts

    frame = load_breast_cancer(as_frame=True).frame
    frame.to_csv(tmp_path / "bc.csv", index=False)
    run = deepfit.train(str(tmp_path / "bc.csv"), target="target", epochs=2, threads=1,
                        report=False, progress=False, out=tmp_path / "r")
    sizes = run.config["data"]["split_sizes"]
    counts = seen_counts(run.path, run.predictor.features(frame.drop(columns="target")))
    n_train, n_val = counts["train"], counts["val"]
    assert (n_train, n_val) == (sizes["train"], sizes["val"])  # breast cancer has no repeated rows
    assert main(["evaluate", str(run.path), str(tmp_path / "bc.csv")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert (f"the model has seen these rows: {n_train} of the 569 rows" in err
            and f"{n_val} of the 569 rows" in err and "overstate" in err)
    # rows it never saw: silence; a planted copy of one training row among them: one counted
    unseen = pd.DataFrame(np.random.default_rng(1).normal(size=(20, 30)) * 1e3,
                          columns=frame.columns[:30])
    assert seen_counts(run.path, run.predictor.features(unseen)) == {"train": 0, "val": 0}
    train_row = next(i for i in range(len(frame)) if seen_counts(
        run.path, run.predictor.features(frame.iloc[[i], :30]))["train"])
    planted = pd.concat([unseen, frame.iloc[[train_row], :30]], ignore_index=True)
    assert seen_counts(run.path, run.predictor.features(planted)) == {"train": 1, "val": 0}


def test_image_arrays_are_recognised_as_seen_too(tmp_path):
    import deepfit
    from deepfit.lifecycle.seen_rows import seen_counts
    from deepfit.modalities.image.arrays import digits_images, digits_labels

    X, y = digits_images()[:300], digits_labels().to_numpy()[:300]
    run = deepfit.train(X, y, epochs=1, threads=1, report=False, progress=False, out=tmp_path / "r")
    counts = seen_counts(run.path, run.predictor.features(X))
    assert counts["train"] + counts["val"] >= 0.8 * len(X) and counts["train"] > counts["val"] > 0


def test_a_resumed_run_does_not_say_as_asked_for_what_it_inferred(tmp_path):
    """The task inferred at the start is inferred again on resume (same data): its note must
    not turn into "(as asked)"; a task that was asked for stays "as asked"."""
    import json

    import deepfit

    for asked in (None, "classification"):
        out = tmp_path / f"r-{asked}"
        deepfit.train("iris", epochs=2, threads=1, report=False, progress=False, out=out, task=asked)
        record = json.loads((out / "config.json").read_text())
        (out / "config.json").write_text(json.dumps(record | {"status": "running"}))  # as if killed
        run = deepfit.train(resume=out, task="classification")  # the inferred task given: no clash
        said = [d for d in run.notes.decisions if d.startswith("task")]
        assert said == (["task: classification (as asked)"] if asked else
                        [d for d in said if "inferred" in d]) and said


def test_evaluate_says_nothing_of_a_task_it_was_not_asked(tmp_path, keep_logging):
    import logging

    import deepfit

    run = deepfit.train("iris", epochs=1, threads=1, report=False, progress=False, out=tmp_path / "r")
    said: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: said.append(record.getMessage())
    logger = logging.getLogger("deepfit")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    deepfit.evaluate(run.path, "iris")
    assert said and not any("as asked" in m for m in said)  # the seen-rows warning, say


def test_one_of_a_kind_reads_in_the_singular(tmp_path):
    import pandas as pd

    from deepfit.tools.check import check

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=80), "b": 1.0, "c": rng.normal(size=80)})
    frame["y"] = np.where(frame.a > 0, "p", "q")
    frame.loc[3, "c"] = np.nan
    frame.to_csv(tmp_path / "t.csv", index=False)
    messages = [f.message for f in check(tmp_path / "t.csv", target="y")]
    assert any(m.startswith("1 column holds a single value: it carries no information") for m in messages)
    assert not any("1 columns" in m or "1 rows" in m or "column each" in m for m in messages)


def test_compare_prints_counts_as_whole_numbers(tmp_path, capsys):
    assert main(["compare", "iris", "--models", "mlp", "--epochs", "3", "--threads", "1",
                 "--out", str(tmp_path / "c"), "-q"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip("│ ").startswith("mlp"))
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert "3" in cells and not any(c.endswith(".0000") and c.split(".")[0] == "3" for c in cells)


@pytest.mark.parametrize("model, settings, message", [
    ("cnn1d", {"kernel": 4}, "kernel must be an odd number"),
    ("mlp", {"dropout": 1.5}, r"dropout must be in \[0, 1\)"),
    ("cnn", {"widths": (0, 8)}, "must be positive"),
])
def test_a_model_setting_of_the_wrong_value_stops_before_the_data_are_read(tmp_path, model,
                                                                            settings, message):
    """"no-such-data" would be a SourceNotFoundError: the setting's error comes first."""
    import deepfit
    from deepfit.errors import SettingsError

    with pytest.raises(SettingsError, match=message):
        deepfit.train("no-such-data", model=model, out=tmp_path / "r", **settings)
    assert not (tmp_path / "r").exists()
