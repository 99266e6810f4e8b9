"""The checks at the start of `deepfit train`: the data audit always, model sanity with --check;
an error-level finding stops the run before anything is written, unless --force."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepfit.cli import main


def _leaky_csv(path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame["y"] = np.where(frame["a"] + rng.normal(0, 1, 300) > 0, "pos", "neg")
    frame["y_copy"] = frame["y"].map({"pos": 1, "neg": 0})  # the target, re-coded: a leak
    frame.to_csv(path, index=False)


def test_a_target_leak_stops_training_with_one_line(tmp_path, capsys):
    _leaky_csv(tmp_path / "d.csv")
    code = main(["train", str(tmp_path / "d.csv"), "--target", "y", "--epochs", "2",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "the data audit found an error" in err[0] and "y_copy" in err[0] and "--force" in err[0]
    assert not (tmp_path / "run").exists()


def test_force_trains_anyway_and_records_the_finding(tmp_path, capsys):
    _leaky_csv(tmp_path / "d.csv")
    code = main(["train", str(tmp_path / "d.csv"), "--target", "y", "--epochs", "2", "--force",
                 "--out", str(tmp_path / "run")])
    assert code == 0
    import json

    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert any(f["check"] == "target_leak" and f["severity"] == "error" for f in config["findings"])
    assert any("target_leak" in w for w in config["warnings"])


def test_model_sanity_with_check_passes_on_a_clean_dataset(tmp_path):
    import json

    assert main(["train", "breast_cancer", "--check", "--epochs", "2", "--out", str(tmp_path / "r")]) == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    checks = {f["check"] for f in config["findings"]}
    assert {"output_shape", "gradient_flow", "overfit_batch"} <= checks
    assert not any(f["severity"] == "error" for f in config["findings"])
