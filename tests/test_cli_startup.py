"""The command starts at once: parsing and --help import none of the heavy libraries (torch,
scikit-learn, scipy, matplotlib, pandas, numpy), and `import deepfit` alone imports none either;
the public names still resolve on first use. Checked in a fresh interpreter's sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "sklearn", "scipy", "matplotlib", "pandas", "numpy", "torchvision", "safetensors")
COMMANDS = ("train", "predict", "evaluate", "report", "check", "benchmark", "compare", "advise")


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
