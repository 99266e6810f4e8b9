"""`deepfit check`: each mistake planted in clean data is caught, named, and given the right
severity; clean data yields no error."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import deepfit
from deepfit.checks.findings import Finding
from deepfit.checks.rows import sample_size, split_leakage
from deepfit.checks.sanity import model_sanity, sanity_batch
from deepfit.cli import main
from deepfit.data.dataset import Dataset
from deepfit.data.split import split_indices
from deepfit.modalities import load_source
from deepfit.models import InputSpec, OutputSpec, create, registry
from deepfit.tools.check import check


def _frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Clean data: no feature alone decides the label, no duplicates, similar scales."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, n))
    city = rng.choice(["paris", "lyon", "nice"], n)
    label = np.where(a + b + 0.5 * (city == "paris") + rng.normal(0, 0.5, n) > 0, "yes", "no")
    return pd.DataFrame({"a": a, "b": b, "c": c, "city": city, "label": label})


def _only(findings: list[Finding], check_name: str) -> Finding:
    hits = [f for f in findings if f.check == check_name]
    assert len(hits) == 1, (check_name, findings)
    return hits[0]


def _errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


@pytest.fixture
def scratch_registry(monkeypatch):
    """Models registered in a test stay in that test."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


# ---------------------------------------------------------------------------- clean data
def test_clean_frame_has_no_error():
    findings = check(_frame(), target="label")
    assert _errors(findings) == []
    assert {f.check for f in findings} >= {"samples", "output_shape", "initial_loss", "finite",
                                          "gradient_flow", "overfit_batch"}
    assert not {"target_leak", "split_leak", "scale", "constant"} & {f.check for f in findings}


def test_breast_cancer_has_no_error_and_exits_0(capsys):
    assert main(["check", "breast_cancer"]) == 0
    out, _ = capsys.readouterr()
    assert "deepfit check: breast_cancer" in out and "0 errors" in out
    assert "overfit_batch" in out and "gradient_flow" in out


# ---------------------------------------------------------------------------- model sanity
class Detached(nn.Module):
    """An MLP whose middle layer is cut off from the loss by .detach()."""

    def __init__(self, n_features: int, n_outputs: int) -> None:
        super().__init__()
        self.first = nn.Linear(n_features, 16)
        self.middle = nn.Linear(16, 16)
        self.head = nn.Linear(16, n_outputs)

    def forward(self, x):
        h = torch.relu(self.first(x))
        return self.head(torch.relu(self.middle(h)).detach() + h)


def test_detached_layer_is_named(scratch_registry):
    @registry.register("detached")
    def detached(input_spec, output_spec):
        return Detached(input_spec.n_features, output_spec.n_outputs)

    findings = check(_frame(), target="label", model="detached")
    flow = _only(findings, "gradient_flow")
    assert flow.severity == "error" and flow.evidence == 2
    assert "middle.weight" in flow.subject and "middle.bias" in flow.subject
    assert "first" not in flow.subject and "head" not in flow.subject
    assert flow.subject.startswith("detached: ")
    # the other checks still ran on the model
    assert _only(findings, "overfit_batch").severity == "info"


def _spec_and_batch(task: str = "classification", n_classes: int = 3, rows: int = 32):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(rows, 6, generator=g)
    y = torch.arange(rows) % n_classes if task == "classification" else torch.randn(rows, generator=g)
    n_out = n_classes if task == "classification" else 1
    return InputSpec(n_features=6, n_dense=6), OutputSpec(task, n_out), (X, y)


def test_model_sanity_on_a_model_object():
    spec, out, batch = _spec_and_batch()
    torch.manual_seed(0)
    model = create("mlp", spec, out)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.get_rng_state()
    findings = model_sanity(model, spec, out, batch)
    assert _errors(findings) == []
    loss = _only(findings, "initial_loss")
    assert abs(loss.evidence - math.log(3)) < 1.0 and "ln(3)" in loss.message
    steps = _only(findings, "overfit_batch").evidence
    assert 1 <= steps <= 200
    # the caller's model and random state are left as they were
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert all(p.grad is None for p in model.parameters())


class ZeroBranch(nn.Module):
    """A layer whose output is multiplied by zero: it gets a gradient, of zeros."""

    def __init__(self, n_features: int, n_outputs: int) -> None:
        super().__init__()
        self.used = nn.Linear(n_features, n_outputs)
        self.muted = nn.Linear(n_features, n_outputs)

    def forward(self, x):
        return self.used(x) + 0.0 * self.muted(x)


def test_zero_gradient_is_a_warning_naming_the_layer():
    spec, out, batch = _spec_and_batch()
    findings = model_sanity(ZeroBranch(6, 3), spec, out, batch, name="zb")
    flow = _only(findings, "gradient_flow")
    assert flow.severity == "warning" and flow.subject == "zb: muted.weight, muted.bias"


def test_a_failing_training_step_is_an_error_not_a_crash():
    spec, out, (X, y) = _spec_and_batch()
    model = create("mlp", spec, out)  # BatchNorm cannot train on a single row
    findings = model_sanity(model, spec, out, (X[:1], y[:1]))
    step = _only(findings, "train_step")
    assert step.severity == "error" and "1 rows" in step.message


class Scaled(nn.Module):
    def __init__(self, n_features: int, n_outputs: int, scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, 32), nn.ReLU(), nn.Linear(32, n_outputs))
        self.scale = scale

    def forward(self, x):
        return self.body(x) * self.scale


def test_overconfident_start_is_a_warning():
    spec, out, batch = _spec_and_batch()
    torch.manual_seed(0)
    finding = _only(model_sanity(Scaled(6, 3, 100.0), spec, out, batch), "initial_loss")
    assert finding.severity == "warning" and finding.evidence > math.log(3) + 1


def test_nan_in_the_forward_pass_is_an_error():
    spec, out, batch = _spec_and_batch()
    torch.manual_seed(0)
    findings = model_sanity(Scaled(6, 3, float("nan")), spec, out, batch)
    finite = _only(findings, "finite")
    assert finite.severity == "error" and "output" in finite.message and finite.evidence >= 1
    json.dumps([f.to_dict() for f in findings], allow_nan=False)  # JSON-safe even then


def test_wrong_output_shape_is_an_error():
    spec, out, batch = _spec_and_batch()
    findings = model_sanity(nn.Linear(6, 4), spec, out, batch)
    assert [f.check for f in findings] == ["output_shape"]
    assert findings[0].severity == "error" and "[32, 3]" in findings[0].message


def test_a_model_that_cannot_fit_a_batch_is_an_error():
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(32, 2, generator=g), torch.randint(0, 4, (32,), generator=g)
    spec, out = InputSpec(n_features=2, n_dense=2), OutputSpec("classification", 4)
    finding = _only(model_sanity(nn.Linear(2, 4), spec, out, (X, y), steps=60), "overfit_batch")
    assert finding.severity == "error" and finding.evidence < 0.9 and "60 steps" in finding.message


def test_regression_sanity():
    spec, out, batch = _spec_and_batch("regression")
    torch.manual_seed(0)
    findings = model_sanity(create("mlp", spec, out), spec, out, batch)
    assert _errors(findings) == []
    assert "standardised target" in _only(findings, "initial_loss").message
    assert "R²" in _only(findings, "overfit_batch").message


def test_sanity_batch_is_seeded():
    X, y = torch.arange(100.0).reshape(50, 2), torch.arange(50)
    a, b = sanity_batch(X, y, rows=8, seed=3), sanity_batch(X, y, rows=8, seed=3)
    assert torch.equal(a[0], b[0]) and len(a[0]) == 8 and torch.equal(a[0][:, 0] / 2, a[1].float())


# ---------------------------------------------------------------------------- data audit
def test_rows_duplicated_across_splits_are_named():
    frame = _frame()
    leaky = pd.concat([frame, frame.iloc[:150]], ignore_index=True)
    findings = check(leaky, target="label")
    leak = _only(findings, "split_leak")
    assert leak.severity == "error"
    # the same rows found a second way: val/test rows whose features equal a train row's
    data = load_source(leaky, target="label")
    splits = split_indices(data.y, data.task, 0.15, 0.15, 0)
    as_tuples = [tuple(row) for row in data.X.itertuples(index=False)]
    train = {as_tuples[i] for i in splits.train}
    val = {as_tuples[i] for i in splits.val}
    expected = [i for i in splits.val if as_tuples[i] in train]
    expected += [i for i in splits.test if as_tuples[i] in train | val]
    assert leak.evidence == len(expected) > 0
    assert leak.subject.startswith("rows " + ", ".join(map(str, sorted(expected)[:6])))
    assert _only(findings, "duplicates").evidence == 150


def test_a_single_leaked_row_in_a_small_set_is_a_warning():
    data = load_source("iris")  # one row repeats another exactly
    finding = split_leakage(data, split_indices(data.y, data.task, 0.15, 0.15, 0))[0]
    assert finding.severity == "warning" and finding.evidence == 1 and finding.subject == "row 142"


def test_rows_of_the_test_file_seen_in_training(tmp_path):
    frame = _frame()
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[:60].to_csv(tmp_path / "test.csv", index=False)
    leak = _only(check(str(tmp_path / "train.csv"), target="label", test=str(tmp_path / "test.csv")),
                 "split_leak")
    assert leak.severity == "error" and "--test file" in leak.subject


def test_target_mapped_to_strings_is_named():
    frame = _frame()
    frame["status"] = frame["label"].map({"yes": "approved", "no": "rejected"})
    leaks = [f for f in check(frame, target="label") if f.check == "target_leak"]
    assert [(f.subject, f.severity) for f in leaks] == [("status", "error")]
    assert leaks[0].evidence == 1.0 and "status" in leaks[0].fix


def test_recoded_target_is_named_classification():
    frame = _frame()
    frame["code"] = np.where(frame["label"] == "yes", 1, 0) * 2 + 1.0
    leaks = [f for f in check(frame, target="label") if f.check == "target_leak"]
    assert [f.subject for f in leaks] == ["code"]


def test_recoded_target_is_named_regression():
    frame = _frame().drop(columns="label")
    rng = np.random.default_rng(1)
    frame["price"] = frame["a"] + frame["b"] + rng.normal(0, 0.5, len(frame))
    frame["price_x2"] = frame["price"] * 2 + 1
    findings = check(frame, target="price")
    assert [f.subject for f in findings if f.check == "target_leak"] == ["price_x2"]
    assert _only(findings, "target_leak").severity == "error"


def test_many_class_recoding_and_an_id_column():
    rng = np.random.default_rng(2)
    n = 2_000
    y = rng.integers(0, 20, n)
    X = pd.DataFrame({"noise": rng.normal(size=n), "row_id": np.arange(n) * 1.0,
                      "shuffled_code": rng.permutation(20)[y] * 10.0 + rng.random(n)})
    leaks = [f for f in check(X, y, task="classification") if f.check == "target_leak"]
    assert [f.subject for f in leaks] == ["shuffled_code"]  # an ID memorises nothing out of fold


def test_feature_times_a_million_is_named_with_its_range():
    frame = _frame()
    frame["b"] = frame["b"] * 1e6
    finding = _only(check(frame, target="label"), "scale")
    assert finding.severity == "info" and "standardises" in finding.message
    assert finding.subject == "b" and finding.evidence > 1e5
    low, high = frame["b"].min(), frame["b"].max()
    assert f"'b' {low:.4g} to {high:.4g}" in finding.message


def test_tiny_dataset_gets_the_rule_of_thumb():
    finding = _only(check(_frame(200), target="label"), "samples")
    assert finding.severity == "warning" and finding.evidence == 200
    assert "10,000" in finding.message and "gradient boosting" in finding.fix
    assert "transfer" not in finding.fix  # a table's advice: gradient boosting (test_check_messages.py)


@pytest.mark.parametrize("rows,severity,has_fix", [(5_000, "info", True), (12_000, "info", False)])
def test_sample_size_thresholds(rows, severity, has_fix):
    data = Dataset(pd.DataFrame({"x": np.arange(rows)}), pd.Series(np.arange(rows) % 2), "d",
                   "target", "classification")
    (finding,) = sample_size(data)
    assert finding.severity == severity and bool(finding.fix) == has_fix and finding.evidence == rows


def test_constant_missing_and_imbalance():
    frame = _frame()
    frame["version"] = 3
    frame["flag"] = 0
    frame.loc[0, "flag"] = 1
    frame.loc[frame.index[:450], "c"] = np.nan
    frame.loc[frame.index[:20], "a"] = np.nan
    rare = frame[frame["label"] == "yes"].index[40:]
    frame = frame.drop(index=rare)
    findings = check(frame, target="label")
    constant = _only(findings, "constant")
    assert constant.severity == "warning" and constant.subject == "version"
    near = _only(findings, "near_constant")
    assert near.severity == "info" and near.subject == "flag"
    missing = [f for f in findings if f.check == "missing"]
    assert [(f.severity, f.subject) for f in missing] == [("warning", "c"), ("info", "a")]
    imbalance = _only(findings, "imbalance")
    assert imbalance.severity == "warning" and imbalance.evidence > 3
    assert "--imbalance" in imbalance.fix


# ---------------------------------------------------------------------------- API and command
def test_api_exports_and_order():
    assert deepfit.check is check
    findings = deepfit.check(_frame(200), target="label")
    order = ["error", "warning", "info"]
    assert [order.index(f.severity) for f in findings] == sorted(order.index(f.severity)
                                                                  for f in findings)
    for f in findings:
        assert set(f.to_dict()) == {"check", "severity", "message", "subject", "evidence", "fix"}


def test_cli_json_and_exit_1_on_error(tmp_path, capsys, scratch_registry):
    @registry.register("detached")
    def detached(input_spec, output_spec):
        return Detached(input_spec.n_features, output_spec.n_outputs)

    frame = _frame()
    frame["leak"] = frame["label"]
    frame.to_csv(tmp_path / "data.csv", index=False)
    code = main(["check", str(tmp_path / "data.csv"), "--target", "label", "--json",
                 "--model", "mlp,detached", "--hidden", "32"])
    out, _ = capsys.readouterr()
    assert code == 1
    findings = json.loads(out)
    errors = {(f["check"], f["subject"].split(":")[0]) for f in findings if f["severity"] == "error"}
    assert errors == {("target_leak", "leak"), ("gradient_flow", "detached")}
    assert sum(f["check"] == "overfit_batch" for f in findings) == 2  # both models checked


def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert main(["check", str(tmp_path / "absent.csv"), "--target", "y"]) == 2
    assert "no such file" in capsys.readouterr().err
    _frame().to_csv(tmp_path / "data.csv", index=False)
    assert main(["check", str(tmp_path / "data.csv")]) == 2  # no --target
    assert main(["check", "iris", "--model", "nope"]) == 2
    assert main(["check", "iris", "--set", "widht=3"]) == 2
    assert "unknown setting" in capsys.readouterr().err


def test_check_on_sequence_arrays_checks_them_no_longer_a_named_error():
    # was a named error ("covers tables so far"); sequences and images are checked now
    # (tests/test_check_modalities.py): all-zero sequences are blank, and cnn1d is sanity-checked
    import numpy as np

    import deepfit

    findings = deepfit.check(np.zeros((20, 5, 2)), y=np.arange(20) % 2, width=8, depth=1)
    blank = [f for f in findings if f.check == "blank"]
    assert blank and blank[0].evidence == 20
    assert any(f.check == "overfit_batch" and f.subject == "cnn1d" for f in findings)
