"""Plots and report.html: written with every run, self-contained, regenerated and compared by
`deepfit report`, and checked in a real browser (headless Chromium) where one is installed."""

from __future__ import annotations

import html
import importlib
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import deepfit
from deepfit.cli import main

FAST = {"threads": 1, "progress": False, "checkpoint": False}
BINARY_PLOTS = {"loss", "metrics", "lr", "confusion_matrix", "roc", "pr"}
REGRESSION_PLOTS = {"loss", "metrics", "lr", "predicted_vs_true"}


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    return deepfit.train("breast_cancer", out=tmp_path_factory.mktemp("b") / "binary", epochs=6,
                         threshold="auto", **FAST)


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    return deepfit.train("diabetes", out=tmp_path_factory.mktemp("r") / "regression", epochs=4, **FAST)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("which,expected", [("binary_run", BINARY_PLOTS), ("regression_run", REGRESSION_PLOTS)])
def test_every_run_directory_holds_non_empty_png_plots(which, expected, request):
    from matplotlib.image import imread

    run = request.getfixturevalue(which)
    plots = {p.stem: p for p in (run.path / "plots").iterdir()}
    assert set(plots) == expected
    for name, path in plots.items():
        width, height = png_size(path)
        assert width >= 300 and height >= 300 and path.stat().st_size > 5_000, name
        pixels = imread(path)
        assert pixels.std() > 0.05, f"{name} is blank"  # something was drawn


def test_report_is_one_self_contained_page_with_everything(binary_run):
    page = (binary_run.path / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # nothing to fetch: every image inline, no script, a policy that forbids any request
    sources = re.findall(r'\s(?:src|href)="([^"]*)"', page)
    assert len(sources) == len(BINARY_PLOTS) and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<script" not in page and "<link" not in page and "://" not in page.replace("data:", "")
    assert "default-src 'none'" in page
    config = json.loads((binary_run.path / "config.json").read_text())
    metrics = json.loads((binary_run.path / "metrics.json").read_text())
    for note in config["decisions"] + config["warnings"]:
        assert html.escape(note) in page, note
    for key in ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "average_precision", "log_loss",
                "threshold"):
        assert f"<th>{key}</th>" in page and key in metrics
    for label, values in metrics["per_class"].items():  # the per-class table
        assert re.search(rf"<td>{re.escape(label)}</td><td>{values['precision']:.4f}</td>", page)
    for split, size in config["data"]["split_sizes"].items():
        assert f"<td>{split}</td><td>{size}</td>" in page
    assert "<th>lr</th>" in page and "<th>imbalance</th>" in page  # the settings
    assert "Confusion matrix" in page and "Checklist" in page


def test_report_command_regenerates_the_page_from_the_saved_files(binary_run, tmp_path, capsys,
                                                                   monkeypatch):
    """Quick because it only reads config.json, metrics.json, history.csv and the saved plots:
    no model is loaded, nothing is predicted and no plot is drawn again (asserted by making each
    of those fail; a wall-clock bound would fail on a loaded machine)."""
    report_module = importlib.import_module("deepfit.evaluation.report")
    runs_module = importlib.import_module("deepfit.lifecycle.directory")

    def forbidden(*args, **kwargs):
        raise AssertionError("report regeneration must only read the run's saved files")

    monkeypatch.setattr(runs_module, "load", forbidden)
    monkeypatch.setattr(report_module, "write_plots", forbidden)
    monkeypatch.setattr(torch.nn.Module, "__call__", forbidden)
    page = binary_run.path / "report.html"
    before = page.read_text()
    page.unlink()
    assert main(["report", str(binary_run.path)]) == 0
    assert "report written to" in capsys.readouterr().out
    assert _strip_stamp(page.read_text()) == _strip_stamp(before)
    assert main(["report", str(binary_run.path), "--out", str(tmp_path / "copy.html")]) == 0
    assert (tmp_path / "copy.html").exists()


def test_report_of_several_runs_compares_them_side_by_side(binary_run, tmp_path):
    other = deepfit.train("breast_cancer", out=tmp_path / "other", epochs=3, lr=3e-3,
                          imbalance="weights", report=False, **FAST)
    out = tmp_path / "compare.html"
    assert main(["report", str(binary_run.path), str(other.path), "--out", str(out)]) == 0
    page = out.read_text()
    assert "comparison of 2 runs" in page and "binary" in page and "other" in page
    assert re.search(r"<td>lr</td><td>0.001</td><td>0.003</td>", page)  # the settings that differ
    assert re.search(r"<td>imbalance</td><td>auto</td><td>weights</td>", page)
    assert "<th>f1_macro</th>" in page and "class='num best'" in page  # metrics, best marked
    assert not re.search(r"<th>(n|threshold)</th>[^\n]*?best", page.replace("</tr>", "\n"))  # not scores
    assert page.count("<img ") >= 4  # overlaid curves, and each run's plots that exist


def test_a_run_without_a_report_can_get_one_later(tmp_path):
    run = deepfit.train("iris", out=tmp_path / "quiet", epochs=2, report=False, **FAST)
    assert not (run.path / "report.html").exists() and not (run.path / "plots").exists()
    path = deepfit.report(run.path)
    assert path == run.path / "report.html" and "No plots in this run directory" in path.read_text()


def test_a_failing_plot_costs_a_warning_not_the_trained_model(tmp_path, monkeypatch):
    from deepfit.evaluation import report

    def broken(*args, **kwargs):
        raise RuntimeError("no renderer")

    monkeypatch.setattr(report, "write_plots", broken)
    run = deepfit.train("iris", out=tmp_path / "run", epochs=2, **FAST)
    config = json.loads((run.path / "config.json").read_text())
    assert config["status"] == "finished" and "report not written: RuntimeError: no renderer" in config["warnings"]
    assert deepfit.load(run.path).predict(np.zeros((1, 4))).shape == (1,)


def test_report_of_something_that_is_not_a_run_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "config.json is missing" in capsys.readouterr().err


def _strip_stamp(page: str) -> str:
    return re.sub(r"written \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "", page)


# ----------------------------------------------------------------- in a real browser
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
CHECK = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__errors.push(t && t.tagName ? 'failed to load ' + t.tagName + ' ' + String(t.src).slice(0, 60)
                                      : 'error: ' + e.message);
}, true);
['error', 'warn'].forEach(function (level) {
  var original = console[level];
  console[level] = function () {
    window.__errors.push('console.' + level + ': ' + Array.prototype.join.call(arguments, ' '));
    original.apply(console, arguments);
  };
});
document.addEventListener('securitypolicyviolation', function (e) { window.__errors.push('blocked ' + e.blockedURI); });
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var out = document.createElement('pre');
  out.id = '__check';
  out.textContent = JSON.stringify({
    images: images.length,
    broken: images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).map(function (i) { return i.alt; }),
    errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed: `make test` installs Debian's chromium "
                    "where apt-get is available (.ci/ensure-chromium); here it could not, so the report "
                    "is not checked in a browser")
def test_report_renders_in_chromium_with_every_image_and_no_console_error(binary_run, tmp_path):
    page = (binary_run.path / "report.html").read_text(encoding="utf-8")
    # a copy with a checker that runs on load: the report's policy gains inline scripts, nothing else
    checked = page.replace("style-src 'unsafe-inline'", "style-src 'unsafe-inline'; script-src 'unsafe-inline'")
    checked = checked.replace("<head>", "<head>" + CHECK, 1)
    (tmp_path / "checked.html").write_text(checked, encoding="utf-8")
    done = _chromium(["--dump-dom", (tmp_path / "checked.html").as_uri()], tmp_path / "profile")
    found = re.search(r'<pre id="__check">(.*?)</pre>', done.stdout, re.S)
    assert found, f"chromium did not render the page (exit {done.returncode}): {done.stderr[-2000:]}"
    result = json.loads(html.unescape(found.group(1)))
    assert result == {"images": len(BINARY_PLOTS), "broken": [], "errors": []}
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    # and a screenshot of the report itself, as a person would see it
    shot = tmp_path / "report.png"
    done = _chromium([f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars",
                      (binary_run.path / "report.html").as_uri()], tmp_path / "profile")
    width, height = png_size(shot)
    assert (width, height) == (1280, 2400)
    from matplotlib.image import imread

    pixels = imread(shot)
    assert np.std(pixels) > 0.05 and shot.stat().st_size > 100_000  # a rendered page, not a blank one
    shutil.copy(shot, binary_run.path / "report-screenshot.png")  # to look at after a run


def test_the_data_table_holds_the_modalitys_own_facts():
    """Each modality adds its lines (Modality.report_facts, saved with the run as "facts"): an
    image folder's reading and its skipped files by name, a time series' windows."""
    from deepfit.evaluation.report import _data_block
    from deepfit.modalities import get_modality

    def page(data: dict) -> str:
        return _data_block({**data, "facts": get_modality(data["modality"]).report_facts(data)})

    images = {"name": "photos", "modality": "image", "streamed": True,
              "skipped_files": ["cats/broken.jpg", "dogs/empty.png"], "skipped_count": 2}
    shown = page(images)
    assert "streamed from disk" in shown and "cats/broken.jpg" in shown and "dogs/empty.png" in shown
    series = {"name": "sales", "modality": "sequence",
              "series": {"channels": ["sales", "temp"], "target": "sales", "window": 24,
                         "horizon": 3, "time_column": "date"}}
    shown = page(series)
    assert "24 rows in, 3 steps ahead" in shown and "2: sales, temp" in shown and "date" in shown
    assert "unreadable" not in page({"name": "t", "modality": "tabular"})
    assert "image files" not in page({"name": "a", "modality": "image"})  # arrays, not a folder
