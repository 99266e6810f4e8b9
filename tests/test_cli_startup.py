"""The command starts at once: parsing and --help import none of the heavy libraries (torch,
scikit-learn, scipy, matplotlib, pandas, numpy), and `import deepfit` alone imports none either;
the public names still resolve on first use. Checked in a fresh interpreter's sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "sklearn", "scipy", "matplotlib", "pandas", "numpy", "torchvision", "safetensors")
COMMANDS = ("train", "predict", "evaluate", "report", "check", "benchmark", "compare", "advise",
            "explain", "export", "lr-find", "tune", "serve", "compress")


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys, json\n{code}\n"
             f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], *[[c, "--help"] for c in COMMANDS]])
def test_help_imports_no_heavy_module(argv):
    code = ("import contextlib, io\nfrom deepfit.cli.app import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        main({argv!r})\n    except SystemExit:\n        pass")
    assert _loaded_after(code) == []


def test_import_deepfit_is_light_and_its_names_resolve():
    assert _loaded_after("import deepfit\nassert 'train' in dir(deepfit)") == []
    import deepfit
    from deepfit.lifecycle.train import train

    assert deepfit.train is train and callable(deepfit.Predictor)
    assert set(deepfit.__all__) <= set(dir(deepfit))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        deepfit.nope  # noqa: B018


def test_the_command_sets_openmps_wait_policy_before_torch():
    code = ("import os, contextlib, io\nos.environ.pop('OMP_WAIT_POLICY', None)\n"
            "from deepfit.cli.app import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "assert os.environ['OMP_WAIT_POLICY'] == 'PASSIVE'")
    assert _loaded_after(code) == []


def _console(*args: str, before: str = "") -> subprocess.CompletedProcess:
    """The installed script's entry (`deepfit.cli:console`) in a fresh interpreter, output piped."""
    code = f"import sys\n{before}\nfrom deepfit.cli import console\nsys.argv = ['deepfit', *{args!r}]\nconsole()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_console_exits_quickly_with_the_commands_code_and_all_its_output():
    # A command that loads torch and writes a long piped report: every line arrives (stdout is
    # flushed before the quick exit), atexit handlers still run, and the code passes through.
    before = "import atexit\natexit.register(lambda: print('atexit ran', file=sys.stderr))"
    done = _console("check", "iris", before=before)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().splitlines()[-1].endswith(" notes")  # the summary, last line
    assert "atexit ran" in done.stderr


def test_console_user_error_is_one_line_and_code_2(tmp_path):
    done = _console("train", str(tmp_path / "nosuch.csv"), "--target", "y")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"deepfit: error: no such file: {tmp_path / 'nosuch.csv'}"]


def test_console_help_and_version_exit_0_and_a_live_thread_keeps_the_normal_exit(tmp_path):
    assert _console("--help").returncode == 0
    version = _console("--version")
    assert version.returncode == 0 and version.stdout.startswith("deepfit 0.")
    # A non-daemon thread still running when the command ends is waited for, as Python would.
    before = ("import threading, time\n"
              "threading.Thread(target=lambda: (time.sleep(0.5), print('thread done'))).start()")
    done = _console("train", str(tmp_path / "nosuch.csv"), "--target", "y", before=before)
    assert done.returncode == 2 and done.stdout == "thread done\n"
