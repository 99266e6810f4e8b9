"""Output that survives a pipe and a log (issue #25, item 4): without a terminal, one plain line per
epoch on stderr and a history.csv that grows epoch by epoch; `--log-every` and `--quiet`; tables
piped through `cat` (stdout not a terminal, even at COLUMNS=30) keep every cell whole."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

import deepfit
from deepfit.cli import main
from deepfit.cli.output import print_table
from deepfit.errors import SettingsError, StorageError, TrainingInterrupted, printable
from deepfit.training.callbacks import history_file
from deepfit.training.callbacks.progress import ProgressBar
from deepfit.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)  train_loss \S+  val_loss \S+  (?:\S+ \S+  )?"
                        r"lr \d\.\d\de[-+]\d\d  \d+\.\d+s(?:  \(best\))?$")
FAST = {"patience": 100, "report": False, "progress": False, "seed": 3}


def _epochs(err: str) -> list[int]:
    """The epochs of the progress lines on stderr, each line checked against the format."""
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert all(EPOCH_LINE.match(line) for line in lines), lines
    return [int(EPOCH_LINE.match(line)[1]) for line in lines]


def _piped(*argv: str, cwd: Path) -> tuple[int, str, str]:
    """`deepfit ARGV` in a fresh interpreter, stdout and stderr redirected to files, as
    `deepfit … > out.log 2> err.log` (COLUMNS=30: what rich would have wrapped to)."""
    env = {**os.environ, "COLUMNS": "30", "PYTHONUNBUFFERED": "1"}
    with open(cwd / "out.log", "w") as out, open(cwd / "err.log", "w") as err:
        code = subprocess.run([sys.executable, "-m", "deepfit.cli", *argv], stdout=out, stderr=err,
                              cwd=cwd, env=env, timeout=300).returncode
    return code, (cwd / "out.log").read_text(), (cwd / "err.log").read_text()


def test_a_piped_run_logs_one_line_per_epoch_and_prints_whole_tables(tmp_path):
    code, out, err = _piped("train", "breast_cancer", "--epochs", "3", "--patience", "100",
                            "--monitor", "val_accuracy", "--no-report", "--threads", "1",
                            "--out", "run", cwd=tmp_path)
    assert code == 0, err
    assert _epochs(err) == [1, 2, 3]
    assert all(" val_accuracy " in line for line in err.splitlines() if line.startswith("epoch "))
    assert not re.search(r"^epoch ", out, re.M)  # stdout keeps the results alone
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    # The tables, 30 columns or not: every cell whole on its row, nothing cut with "…"
    assert "…" not in out
    assert re.search(r"^│ malignant +│ +\d\.\d{4} │", out, re.M), out
    assert re.search(r"^│ precision_weighted +│ \d\.\d{4} │$", out, re.M), out
    checklist = [line for line in out.splitlines() if line.startswith((" ✓", " ✗"))]
    assert checklist and all(line.count(":") >= 1 for line in checklist)
    assert any(line.startswith(" ✓ better than the trivial predictor: test balanced accuracy")
               and "always answering" in line for line in checklist), checklist  # one line


def test_the_check_table_piped_keeps_every_finding_on_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "deepfit.cli", "check", "breast_cancer", "--json"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    findings = json.loads(done.stdout)
    code, out, _ = _piped("check", "breast_cancer", cwd=tmp_path)
    assert code == 0 and findings
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == len(findings)  # one line per finding (the header row is ┃)
    for finding, row in zip(findings, rows):
        cells = [cell.strip() for cell in row.strip("│").split("│")]
        assert cells == [finding["severity"], *(printable(finding[k]) for k in
                                                ("check", "subject", "message", "fix"))]


def test_history_csv_holds_every_finished_epoch_while_training(tmp_path, monkeypatch):
    seen, original = [], ProgressBar.on_epoch_end

    def probe(self, trainer, state, logs):  # after the history row, as the last callback
        history = pd.read_csv(tmp_path / "run" / "history.csv")
        status = json.loads((tmp_path / "run" / "config.json").read_text())["status"]
        seen.append((state.epoch, history["epoch"].tolist(), status))
        original(self, trainer, state, logs)

    monkeypatch.setattr(ProgressBar, "on_epoch_end", probe)
    run = deepfit.train("iris", out=tmp_path / "run", epochs=4, **FAST)
    assert seen == [(k, list(range(1, k + 1)), "running") for k in (1, 2, 3, 4)]
    final = pd.read_csv(run.path / "history.csv")
    assert final["epoch"].tolist() == [1, 2, 3, 4]
    assert final.columns.tolist() == pd.DataFrame(run.history).columns.tolist()


def test_a_resumed_run_holds_each_epoch_once(tmp_path, monkeypatch):
    run_dir, original = tmp_path / "run", Trainer._step

    def step(self, loss):  # iris: 2 steps an epoch; stop within the 4th
        original(self, loss)
        if self.state.step == 7:
            self.stop_requested = True

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_step", step)
        with pytest.raises(TrainingInterrupted):
            deepfit.train("iris", out=run_dir, epochs=6, **FAST)
    lines = (run_dir / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["epoch", "1", "2", "3"]
    # as a kill between the row and the next checkpoint would leave it: a row the checkpoint lacks
    (run_dir / "history.csv").write_text("\n".join([*lines, lines[-1], ""]))
    seen, probe_base = [], ProgressBar.on_epoch_end

    def probe(self, trainer, state, logs):
        seen.append(pd.read_csv(run_dir / "history.csv")["epoch"].tolist())
        probe_base(self, trainer, state, logs)

    monkeypatch.setattr(ProgressBar, "on_epoch_end", probe)
    run = deepfit.train(resume=run_dir, progress=False)
    assert seen == [[1, 2, 3, 4], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]]
    assert pd.read_csv(run.path / "history.csv")["epoch"].tolist() == [1, 2, 3, 4, 5, 6]


def test_a_refused_history_write_is_a_storage_error_that_keeps_the_run(tmp_path, monkeypatch):
    def refused(path, mode="r", *args, **kwargs):
        if Path(path).name == "history.csv" and "a" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(history_file, "open", refused, raising=False)
    with pytest.raises(StorageError, match=r"cannot write .*history\.csv: No space left on device; "
                                           r".* are kept: .* deepfit train --resume"):
        deepfit.train("iris", out=tmp_path / "run", epochs=3, **FAST)
    assert (tmp_path / "run" / "checkpoints").is_dir()


def test_log_every_and_quiet_on_the_command_line(tmp_path, capsys, keep_logging):
    base = ["train", "iris", "--patience", "100", "--no-report", "--no-checkpoint", "--threads", "1"]
    assert main([*base, "--epochs", "5", "--log-every", "2", "--out", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert _epochs(err) == [2, 4, 5]  # every 2nd, and the last
    assert main(["-q", *base, "--epochs", "3", "--out", str(tmp_path / "b")]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "test metrics" in out  # quiet: no lines per epoch; the results stay
    assert pd.read_csv(tmp_path / "b" / "history.csv")["epoch"].tolist() == [1, 2, 3]


def test_the_epoch_early_stopping_stops_at_is_always_logged(tmp_path, capsys, keep_logging):
    assert main(["train", "iris", "--epochs", "300", "--patience", "1", "--log-every", "1000",
                 "--no-report", "--no-checkpoint", "--out", str(tmp_path / "r")]) == 0
    epochs_run = json.loads((tmp_path / "r" / "config.json").read_text())["train"]["epochs_run"]
    assert _epochs(capsys.readouterr().err) == [epochs_run]


def test_log_every_is_checked():
    with pytest.raises(SettingsError, match="log_every must be a whole number"):
        deepfit.train("iris", epochs=1, log_every=0)


def test_on_a_terminal_a_column_shrinks_no_narrower_than_its_longest_word():
    words = ["the", "class", "malignant", "has", "few", "rows", "beside", "gradient_boosting"]
    for width in (80, 30):  # at 30 the words cannot all fit: folded, never cut with "…"
        console = Console(file=io.StringIO(), force_terminal=True, width=width, color_system=None)
        table = Table(show_lines=True, expand=True)
        for column in ("severity", "check", "subject", "message"):
            table.add_column(column, no_wrap=column in ("severity", "check"))
        table.add_row(Text("warning"), Text("class_balance"), Text("malignant"), Text(" ".join(words)))
        print_table(console, table)
        shown = console.file.getvalue()
        assert "…" not in shown and all(len(line) <= width for line in shown.splitlines())
        if width == 80:
            tokens = set(re.split(r"[\s│┃]+", shown))
            assert {"warning", "class_balance", *words} <= tokens, shown
