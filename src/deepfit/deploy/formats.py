"""The formats a run's network is exported to, each written by the library that owns it and run
back by the runtime that reads it (deploy/export.py checks the two agree):

    onnx   torch.onnx.export: the dynamo exporter (dynamo=True; torch.export's graph translated
           by onnxscript) or the TorchScript-based one (dynamo=False, tracing), run back with
           onnxruntime's InferenceSession on the CPU
    pt2    torch.export.export → an ExportedProgram saved with torch.export.save, run back as
           torch.export.load(path).module()

Both take one float32 input named "input" ([N, ...], the preprocessor's output) and give one
output named "output" ([N, n_outputs]: logits, or standardised values). With a dynamic batch the
first axis is free (torch.export.Dim "batch", min 1); without, it is fixed at 1 and longer inputs
are run one sample at a time.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepfit.core.extras import import_extra

FORMATS = ("onnx", "pt2")
EXPORTERS = {"onnx": ("auto", "dynamo", "torchscript"), "pt2": ("auto", "torch.export")}
MODEL_FILES = {"onnx": "model.onnx", "pt2": "model.pt2"}
INPUT, OUTPUT = "input", "output"
CHUNK = 256  # samples per call when the batch is dynamic
PURPOSE = "deepfit export --format onnx"
ONE_FILE_BYTES = 1.5e9  # weights above this go to an external data file (ONNX's 2 GB protobuf limit)

# a model file and how to run it: (inputs [N, ...] float32) → outputs [N, n_outputs] float32
Runner = Callable[[np.ndarray], np.ndarray]


def attempts(fmt: str, exporter: str) -> list[str]:
    """The exporters to try in order: for ONNX `auto` is the dynamo exporter, then the
    TorchScript-based one as the named fallback."""
    if exporter != "auto":
        return [exporter]
    return ["dynamo", "torchscript"] if fmt == "onnx" else ["torch.export"]


def require(fmt: str, exporters: list[str]) -> None:
    """The optional packages `fmt` needs, or MissingExtraError naming the `export` extra."""
    if fmt == "onnx":
        import_extra("onnx", "export", PURPOSE)
        import_extra("onnxruntime", "export", PURPOSE)
        if "dynamo" in exporters:
            import_extra("onnxscript", "export", PURPOSE)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The exporters' progress lines and warnings kept off the user's terminal."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def write(fmt: str, exporter: str, model: nn.Module, example: torch.Tensor, path: Path,
          opset: int | None, dynamic_batch: bool) -> int | None:
    """Export `model` (eval mode, on the CPU) traced on `example` [B, ...] to `path`; returns
    the ONNX opset written (None for pt2). Exceptions are the exporter's own."""
    batch = torch.export.Dim("batch", min=1)
    with quiet(), torch.no_grad():
        if fmt == "pt2":
            program = torch.export.export(model, (example,), strict=False,
                                          dynamic_shapes=({0: batch},) if dynamic_batch else None)
            torch.export.save(program, str(path))
            return None
        names = {"input_names": [INPUT], "output_names": [OUTPUT], "opset_version": opset}
        if exporter == "dynamo":
            big = sum(p.numel() * p.element_size() for p in model.parameters()) > ONE_FILE_BYTES
            torch.onnx.export(model, (example,), str(path), dynamo=True, verbose=False,
                              external_data=big, dynamic_shapes=({0: batch},) if dynamic_batch else None,
                              **names)
        else:
            torch.onnx.export(model, (example,), str(path), dynamo=False, verbose=False,
                              dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}
                              if dynamic_batch else None, **names)
    return onnx_opset(path)


def onnx_opset(path: Path) -> int | None:
    """The default-domain opset an ONNX file imports (its header only; weights not read)."""
    onnx = import_extra("onnx", "export", PURPOSE)
    model = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def runner(fmt: str, path: Path, dynamic_batch: bool, threads: int | None = None) -> Runner:
    """The exported model at `path`, loaded by its runtime, as a function of numpy inputs."""
    if fmt == "pt2":
        with quiet():
            module = torch.export.load(str(path)).module()

        def call(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return module(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    else:
        session = onnx_session(path, threads)

        def call(x: np.ndarray) -> np.ndarray:
            return session.run([OUTPUT], {INPUT: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def run(x: np.ndarray) -> np.ndarray:
        size = CHUNK if dynamic_batch else 1
        return np.concatenate([call(x[i : i + size]) for i in range(0, len(x), size)])

    return run


def onnx_session(path: Path, threads: int | None = None) -> Any:
    """An onnxruntime InferenceSession of `path` on the CPU, with `threads` intra-op threads
    (default: torch's count, so that the two runtimes are compared on the same cores)."""
    ort = import_extra("onnxruntime", "export", PURPOSE)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
