"""A run directory is validated before anything is built (issue #24): a fuzzer edits model.json
and the weights file of a real run (keys removed, types changed, sizes blown up, checksum nulled
or wrong, paths pointing outside, files that are not files) and every case must be a named
error, one line and exit 2 on the command line, within a time bound; the untouched run and
`--no-verify` on a run whose checksum was lost still load and predict as the saved model."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepfit
from deepfit.cli import main
from deepfit.errors import DeepfitError, IntegrityError, RunDirError
from deepfit.lifecycle.predictor import Predictor

SECONDS = 20  # far above any check here (milliseconds); a hang fails instead of blocking


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    run = deepfit.train("iris", out=tmp_path_factory.mktemp("r") / "run", epochs=3,
                        progress=False, report=False, seed=0)
    return run.path, run.predictor


@pytest.fixture
def run_dir(saved, tmp_path):
    return Path(shutil.copytree(saved[0], tmp_path / "run"))


@pytest.fixture(autouse=True)
def time_bound(answer_within):
    with answer_within(SECONDS):
        yield


def _edit(path: Path, change: Callable[[dict], object]) -> None:
    meta = json.loads((path / "model.json").read_text())
    out = change(meta)
    (path / "model.json").write_text(json.dumps(meta if out is None else out))  # out: a new whole


def _arch(**changes):
    return lambda m: m["architecture"].update(changes)


def _settings(**changes):
    return lambda m: m["architecture"]["settings"].update(changes)


def _spec(key, **changes):
    return lambda m: m["architecture"][key].update(changes)


MODEL_JSON_EDITS = {
    "architecture removed": (lambda m: m.pop("architecture") and None, r"'architecture' is missing"),
    "model.json a list": (lambda m: [m], r"holds a list, not a JSON object"),
    "unknown model": (_arch(name="nope"), r"architecture cannot be built: unknown model"),
    "settings a list": (_arch(settings=[1]), r"'architecture.settings' is a list"),
    "a width of 1e9": (_settings(hidden=[10**9, 64]), r"'architecture.settings.hidden\[0\]' is 1000000000, outside"),
    "a negative width": (_settings(hidden=[-5]), r"'architecture.settings.hidden\[0\]' is -5, outside"),
    "a depth of 1e7": (_settings(depth=10**7), r"'architecture.settings.depth' is 10000000, outside \[0, 1000\]"),
    "10,000 layers": (_settings(hidden=[8] * 10_000), r"has 10000 entries, more than 1000"),
    "a setting an object": (_settings(dropout={"a": 1}), r"'architecture.settings.dropout' is a dict"),
    "an unknown setting": (_settings(colour=3), r"cannot be built: unknown setting colour"),
    "features text": (_spec("input_spec", n_features="x"), r"'architecture.input_spec.n_features' is a str"),
    "features 1e12": (_spec("input_spec", n_features=10**12), r"n_features' is 1000000000000, outside"),
    "a shape of 6 dims": (_spec("input_spec", shape=[1] * 6), r"'architecture.input_spec.shape' has 6 entries"),
    "no outputs": (_spec("output_spec", n_outputs=0), r"'architecture.output_spec.n_outputs' is 0, outside"),
    "unknown task": (_spec("output_spec", task="clustering"), r"task' is 'clustering', not one of"),
    "threshold 1.5": (lambda m: m.update(threshold=1.5), r"'threshold' is 1.5: a decision threshold lies in \(0, 1\)"),
    "threshold text": (lambda m: m.update(threshold="half"), r"'threshold' is 'half'"),
    "architecture not the weights'": (_settings(hidden=[64, 64, 32]), r"architecture does not fit model.safetensors: "
                                      r"features.0.weight is \[64, 4\] in the architecture, \[128, 4\]"),
    "outputs not the weights'": (_spec("output_spec", n_outputs=7), r"3 classes but the model 7 outputs"),
    "checksum null": (lambda m: m["weights"].update(sha256=None), r"checksum is missing, .*--no-verify skips"),
    "checksum removed": (lambda m: m["weights"].pop("sha256") and None, r"checksum is missing"),
    "checksum malformed": (lambda m: m["weights"].update(sha256="abc"), r"checksum is malformed \('abc'\)"),
    "checksum another file's": (lambda m: m["weights"].update(sha256="0" * 64), r"does not match the checksum"),
    "weights outside": (lambda m: m["weights"].update(file="../run/../../etc/passwd"), r"points outside the run directory"),
    "weights absolute": (lambda m: m["weights"].update(file="/dev/zero"), r"points outside the run directory"),
    "weights path a number": (lambda m: m["weights"].update(file=3), r"'weights.file' is a int, not a text"),
    "weights file missing": (lambda m: m["weights"].update(file="gone.safetensors"), r"gone.safetensors is missing"),
    "weights the directory": (lambda m: m["weights"].update(file="."), r"is not a regular file"),
    "preprocessor garbage": (lambda m: m.update(preprocessor={"kind": "tabular", "numeric": 5}), r"model.json is damaged"),
    "preprocessor unknown kind": (lambda m: m.update(preprocessor={"kind": "sound"}), r"model.json is damaged"),
    "target empty": (lambda m: m.update(target={}), r"model.json is damaged"),
    "preprocessor without columns": (lambda m: m["preprocessor"].update(numeric=[]),
                                     r"preprocessor makes inputs with n_features 0, its architecture takes 4"),
    "an unknown format": (lambda m: m.update(format=2), r"its format is 2; this deepfit reads format 1"),
    "classes not the outputs": (lambda m: m["target"].update(classes=[]), r"0 classes but the model 3 outputs"),
}


@pytest.mark.parametrize("case", sorted(MODEL_JSON_EDITS))
def test_an_edited_model_json_is_a_named_error(run_dir, case):
    change, says = MODEL_JSON_EDITS[case]
    _edit(run_dir, change)
    with pytest.raises(RunDirError, match=says):
        Predictor.load(run_dir)


def _truncate(path: Path) -> None:
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-16])


def _flip(path: Path) -> None:
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))


def _to_dev_zero(path: Path) -> None:
    (path / "model.safetensors").unlink()
    (path / "model.safetensors").symlink_to("/dev/zero")


def _fifo(path: Path) -> None:
    (path / "model.safetensors").unlink()
    os.mkfifo(path / "model.safetensors")


def _header_garbage(path: Path) -> None:
    (path / "model.safetensors").write_bytes((2**62).to_bytes(8, "little") + b"{}")


WEIGHT_EDITS = {
    "truncated": (_truncate, IntegrityError, r"not a readable safetensors file|does not match the checksum"),
    "one bit flipped": (_flip, IntegrityError, r"does not match the checksum recorded"),
    "a symlink to /dev/zero": (_to_dev_zero, RunDirError, r"points outside the run directory"),
    "a FIFO": (_fifo, RunDirError, r"is not a regular file"),
    "a header claiming 4 EiB": (_header_garbage, IntegrityError, r"not a readable safetensors file"),
}


@pytest.mark.parametrize("case", sorted(WEIGHT_EDITS))
def test_an_edited_weights_file_is_a_named_error(run_dir, case):
    edit, error, says = WEIGHT_EDITS[case]
    edit(run_dir)
    with pytest.raises(error, match=says):
        Predictor.load(run_dir)


@pytest.mark.parametrize("case", ["checksum null", "a depth of 1e7", "weights absolute", "target empty"])
def test_on_the_command_line_each_is_one_line_and_exit_2(run_dir, case, capsys):
    _edit(run_dir, MODEL_JSON_EDITS[case][0])
    code = main(["evaluate", str(run_dir), "iris"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("deepfit: error: ")


def test_the_untouched_run_and_no_verify_load_the_saved_model(saved, run_dir, caplog):
    X = np.random.default_rng(0).normal(size=(5, 4)) + 5
    frame = deepfit.load(saved[0]).predict_frame(X)  # untouched: as the model that saved it
    assert frame.equals(saved[1].predict_frame(X))
    _edit(run_dir, lambda m: m["weights"].update(sha256=None))
    with pytest.raises(IntegrityError):
        deepfit.load(run_dir)
    with caplog.at_level(logging.WARNING, logger="deepfit"):
        loaded = deepfit.load(run_dir, verify=False)
    assert loaded.predict_frame(X).equals(frame)
    assert any("checksum not verified (--no-verify)" in r.getMessage() for r in caplog.records)
    assert main(["evaluate", str(run_dir), "iris", "--no-verify", "-q"]) == 0



@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 1, 8, 8)).astype("float32"), np.arange(40) % 2
    return deepfit.train(X, y=y, model="cnn", widths="8,8", hidden=16, epochs=1, progress=False,
                         report=False, out=tmp_path_factory.mktemp("i") / "run").path


@pytest.mark.parametrize("case, says", [
    ("checksum null", MODEL_JSON_EDITS["checksum null"][1]),
    ("architecture not the weights'", r"architecture does not fit model.safetensors: blocks.1.0.weight is \[4, 8, 3, 3\]"),
    ("weights outside", MODEL_JSON_EDITS["weights outside"][1]),
])
def test_fine_tuning_from_an_edited_run_is_refused_the_same(image_run, tmp_path, case, says):
    run_dir = Path(shutil.copytree(image_run, tmp_path / "run"))
    _edit(run_dir, _settings(widths=[8, 4]) if case.startswith("architecture") else MODEL_JSON_EDITS[case][0])
    X, y = np.random.default_rng(1).random((40, 1, 8, 8)).astype("float32"), np.arange(40) % 2
    with pytest.raises(RunDirError, match=says):
        deepfit.train(X, y=y, model="transfer", weights=str(run_dir), epochs=1, progress=False,
                      report=False, out=tmp_path / "fine")
    assert not (tmp_path / "fine").exists()


# ------------------------------------------------ the fuzzer: any one edit of model.json
def _paths(tree, prefix=()):
    """Every key path of a JSON tree (lists by index), the preprocessor's long lists sampled."""
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i in sorted({0, len(tree) - 1}) if tree else []:
            yield from _paths(tree[i], (*prefix, i))


REPLACEMENTS = [None, "x", "", -1, 0, 10**12, 1.5, float("nan"), True, [], [1, 2], {}, {"a": 1}]


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_one_edit_of_model_json_loads_or_is_a_named_error(saved, tmp_path_factory, data):
    run_dir = Path(shutil.copytree(saved[0], tmp_path_factory.mktemp("f") / "run"))
    meta = json.loads((run_dir / "model.json").read_text())
    path = data.draw(st.sampled_from([p for p in _paths(meta) if p]))
    parent = meta
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(st.sampled_from(REPLACEMENTS))
    (run_dir / "model.json").write_text(json.dumps(meta))
    try:  # a model that loads predicts, or says why not
        Predictor.load(run_dir).predict(np.random.default_rng(0).normal(size=(3, 4)))
    except DeepfitError as exc:
        assert "\n" not in str(exc)


def _model_json_a(kind: str, path: Path) -> None:
    target = path / "model.json"
    target.unlink()
    if kind == "folder":
        target.mkdir()
    elif kind == "FIFO":
        os.mkfifo(target)
    elif kind == "loop":
        target.symlink_to(target)
    else:  # nested past the JSON decoder's recursion
        target.write_text("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("kind, says", [("folder", "is not a regular file"), ("FIFO", "is not a regular file"),
                                        ("loop", "broken symbolic link"), ("deep", "nested too deeply")])
def test_a_model_json_that_is_no_file_is_named_without_reading_it(run_dir, kind, says):
    _model_json_a(kind, run_dir)
    with pytest.raises(RunDirError, match=says):
        Predictor.load(run_dir)


@pytest.mark.parametrize("content, says", [("[]", "holds no JSON object"), ("{}", "'settings' is missing")])
def test_evaluate_and_report_name_a_damaged_config_json(run_dir, content, says, capsys):
    (run_dir / "config.json").write_text(content)
    with pytest.raises(RunDirError, match=says):
        deepfit.evaluate(run_dir, "iris")
    if content == "[]":  # report reads config.json too
        assert main(["report", str(run_dir)]) == 2
