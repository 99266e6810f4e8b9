"""`deepfit.export`: a saved run's network as an ONNX model or a torch.export program, with its
preprocessing written as data and its parity with the Predictor proven on the run's own rows.

    OUT/model.onnx | model.pt2    the network: float32 "input" [N, ...] → "output" [N, n_outputs]
        preprocess.json            raw samples → "input" (the modality's preprocess_spec), and
                                   "output" → predictions (classes, threshold, target scale)
        export.json                what was done and measured (ExportResult.to_dict)

Parity: the exported model runs (onnxruntime, or the loaded ExportedProgram) on the run's test
rows after its preprocessing (lifecycle/held_out.py rebuilds the split from the run directory, checked against the
fingerprint of the data),
and its outputs are compared with the Predictor's on the same raw rows. It passes when

    max |exported - predictor| <= rtol × max(1, max |predictor|)        (rtol 1e-4 for fp32)

and the share of rows whose predicted class agrees is reported beside it. ONNX is tried with
torch's dynamo exporter first and, when it fails to export or to agree, with the TorchScript-based
exporter, a fallback named in export.json. Everything is written in a hidden folder beside OUT and
renamed into place only once parity holds: on an error nothing is left behind.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepfit._version import __version__
from deepfit.core.io import staged_dir, write_json
from deepfit.core.notes import Notes
from deepfit.deploy import formats
from deepfit.errors import DeepfitError, ExportError, ExportParityError, SettingsError
from deepfit.evaluation.full_metrics import predict_codes
from deepfit.lifecycle.held_out import held_out_rows
from deepfit.lifecycle.predictor import Predictor
from deepfit.lifecycle.prepare import take

RTOL = 1e-4  # fp32: outputs agree to 1e-4 of their scale
MAX_ROWS = 512  # test rows the parity check runs on (the first ones of the split)
PREPROCESS, REPORT = "preprocess.json", "export.json"


@dataclass
class ExportResult:
    """What `export` wrote and measured. Paths are final (inside `path`); `max_abs_diff` is
    max |exported - predictor| over `rows` samples of `rows_from`, `tolerance` the bound it
    passed (rtol × max(1, max |predictor|)), `agreement` the share of rows with the same
    predicted class (None for regression); `exporter` the one used ("dynamo", "torchscript",
    "torch.export") and `fallback` why the dynamo exporter was not (None when it was)."""

    path: Path
    model: Path
    preprocess: Path
    report: Path
    format: str
    exporter: str
    fallback: str | None
    opset: int | None
    dynamic_batch: bool
    rows: int
    rows_from: str
    max_abs_diff: float
    tolerance: float
    rtol: float
    agreement: float | None
    seconds: float
    size_bytes: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def export(run: Any, format: str = "onnx", out: str | Path | None = None, opset: int | None = None,
           dynamic_batch: bool = True, *, exporter: str = "auto", rows: Any = None,
           max_rows: int = MAX_ROWS, rtol: float = RTOL, verify: bool = True) -> ExportResult:
    """Export the network of `run` (a run directory, or a `Run`) as `format` ("onnx": ONNX
    through torch.onnx.export; "pt2": torch.export.export saved by torch.export.save) to `out`
    (default RUN_DIR/export-<format>; an earlier export there is replaced), with
    preprocess.json and export.json beside it, and check parity (module docstring) on `rows`
    (raw samples; default the run's test split, else synthetic samples of its training
    distribution, said in the warnings), at most `max_rows` of them. `opset`: the ONNX opset
    (default the exporter's); `dynamic_batch`: a free batch axis (else fixed at 1); `exporter`:
    "auto", "dynamo" or "torchscript" (ONNX), "torch.export" (pt2).

    Returns an ExportResult. Raises SettingsError for bad settings, MissingExtraError when
    onnx / onnxruntime / onnxscript are missing (the `export` extra), the Predictor's errors for
    a damaged run, ExportParityError when the outputs differ beyond the tolerance and
    ExportError when no exporter can export the model; nothing is left behind on any of them."""
    started = time.perf_counter()
    run_dir = Path(getattr(run, "path", run))
    tries = _check_settings(format, exporter, opset, max_rows, rtol)
    formats.require(format, tries)
    out = Path(out) if out is not None else run_dir / f"export-{format}"
    predictor = Predictor.load(run_dir, verify=verify)
    predictor.model.eval()
    raw, rows_from, warnings = _parity_rows(run_dir, predictor, rows, max_rows)
    notes = Notes(live=False)
    inputs = predictor.features(raw, notes).numpy()  # [N, ...] the network's inputs
    expected = predictor.outputs(raw, notes).numpy()  # the Predictor's, from the raw rows
    document = preprocess_document(predictor, inputs.shape[1:], expected.shape[1:], dynamic_batch)
    example = torch.from_numpy(np.repeat(inputs[:1], 2, axis=0) if len(inputs) == 1 else inputs[:2])
    with staged_dir(out, replaceable=lambda p: (p / REPORT).is_file()) as staging:
        model_path = staging / formats.MODEL_FILES[format]
        used, opset_written, got, fallback = _export_first_agreeing(
            format, tries, predictor.model, example if dynamic_batch else example[:1], model_path,
            opset, dynamic_batch, inputs, expected, rtol)
        diff, bound = _difference(got, expected, rtol)
        result = ExportResult(
            out, out / model_path.name, out / PREPROCESS, out / REPORT, format, used, fallback,
            opset_written, dynamic_batch, len(inputs), rows_from, diff, bound, rtol,
            _agreement(predictor, got, expected), 0.0,
            sum(f.stat().st_size for f in staging.iterdir() if f.is_file()), warnings)
        write_json(staging / PREPROCESS, document)
        result.seconds = round(time.perf_counter() - started, 3)
        write_json(staging / REPORT, result.to_dict() | {
            "run": str(run_dir), "model_name": predictor.architecture["name"],
            "versions": _versions(format), "deepfit_version": __version__})
    return result


def _check_settings(fmt: str, exporter: str, opset: int | None, max_rows: int, rtol: float) -> list[str]:
    """The exporters to try, after every setting is checked (SettingsError names the bad one)."""
    if fmt not in formats.FORMATS:
        raise SettingsError(f"--format must be one of {', '.join(formats.FORMATS)}, not {fmt!r}")
    if exporter not in formats.EXPORTERS[fmt]:
        raise SettingsError(f"the {fmt} format's exporter is one of {', '.join(formats.EXPORTERS[fmt])}, "
                            f"not {exporter!r}")
    if opset is not None:
        if fmt != "onnx":
            raise SettingsError("--opset is an ONNX setting; the pt2 format has none")
        if isinstance(opset, bool) or not isinstance(opset, int) or not 7 <= opset <= 30:
            raise SettingsError(f"--opset must be a whole number from 7 to 30, not {opset!r}")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise SettingsError(f"max_rows must be a whole number of at least 1, not {max_rows!r}")
    if not (isinstance(rtol, (int, float)) and 0 < rtol < 1):
        raise SettingsError(f"rtol must be a number between 0 and 1, not {rtol!r}")
    return formats.attempts(fmt, exporter)


def _parity_rows(run_dir: Path, predictor: Predictor, rows: Any, max_rows: int) -> tuple[Any, str, list[str]]:
    """Raw samples to check parity on, where they come from, and what to warn about them."""
    if rows is not None:
        n = len(rows)
        return take(_as_taken(rows), np.arange(min(n, max_rows))), f"{min(n, max_rows)} of the rows given", []
    warnings = []
    try:
        held = held_out_rows(run_dir, predictor)
    except DeepfitError as exc:  # in-memory data, a source gone or changed: said, not hidden
        synthetic = predictor.modality.synthetic_rows(predictor.preprocessor, min(max_rows, 256),
                                                      np.random.default_rng(0))
        warnings.append(f"parity checked on synthetic samples drawn from the training statistics, "
                        f"not the run's test split ({exc})")
        return synthetic, "synthetic samples of the training distribution", warnings
    total = len(held.X)
    n = min(total, max_rows)
    which = f"all {n} rows" if n == total else f"the first {n} of the {total} rows"
    return take(held.X, np.arange(n)), f"{which} of {held.where}", warnings


def _as_taken(rows: Any) -> Any:
    """Rows `take` can slice: a DataFrame or an array as they are, anything else as an array."""
    return rows if hasattr(rows, "iloc") or hasattr(rows, "chunks") else np.asarray(rows)


def _export_first_agreeing(fmt: str, tries: list[str], model: torch.nn.Module, example: torch.Tensor,
                           path: Path, opset: int | None, dynamic_batch: bool, inputs: np.ndarray,
                           expected: np.ndarray, rtol: float) -> tuple[str, int | None, np.ndarray, str | None]:
    """Export with each exporter of `tries` in turn until one's model agrees with `expected`:
    (exporter, opset, its outputs, why the first one was not used or None)."""
    failures: list[str] = []
    parity_failed = False
    for exporter in tries:
        try:
            opset_written = formats.write(fmt, exporter, model, example, path, opset, dynamic_batch)
            got = formats.runner(fmt, path, dynamic_batch)(inputs)
        except Exception as exc:  # the exporter's or the runtime's own failure: try the next
            failures.append(f"the {exporter} exporter failed: {type(exc).__name__}: {_first_line(exc)}")
            _remove_model(path)
            continue
        diff, bound = _difference(got, expected, rtol)
        if diff <= bound:
            return exporter, opset_written, got, (failures[0] if failures else None)
        parity_failed = True
        failures.append(f"the {exporter} exporter's model differs from the Predictor by {diff:.3g} "
                        f"(max |difference| over {len(inputs)} rows), above the tolerance {bound:.3g} "
                        f"= {rtol:g} × max(1, max |output|)")
        _remove_model(path)
    error = ExportParityError if parity_failed else ExportError
    raise error(f"cannot export as {fmt}: " + "; ".join(failures) + "; nothing was written")


def _difference(got: np.ndarray, expected: np.ndarray, rtol: float) -> tuple[float, float]:
    """(max |got - expected|, rtol × max(1, max |expected|)); inf for another shape or a
    non-finite output."""
    bound = rtol * max(1.0, float(np.abs(expected).max(initial=0.0)))
    if got.shape != expected.shape or not np.isfinite(got).all():
        return float("inf"), bound
    return float(np.abs(got.astype(np.float64) - expected).max(initial=0.0)), bound


def _agreement(predictor: Predictor, got: np.ndarray, expected: np.ndarray) -> float | None:
    """The share of rows whose predicted class (softmax, then the threshold or argmax, as the
    Predictor decides) is the same; None for regression."""
    if predictor.task != "classification":
        return None

    def codes(x: np.ndarray) -> np.ndarray:
        return predict_codes(torch.softmax(torch.from_numpy(x).double(), dim=1), predictor.threshold).numpy()

    return float((codes(got) == codes(expected)).mean())


def preprocess_document(predictor: Predictor, input_shape: tuple[int, ...], output_shape: tuple[int, ...],
                        dynamic_batch: bool) -> dict[str, Any]:
    """preprocess.json: the input the network takes, what turns raw samples into it (the run's
    Modality.preprocess_spec), and what turns its output into predictions."""
    batch = None if dynamic_batch else 1
    target = predictor.target
    if predictor.task == "classification":
        rule = ("probabilities = softmax(output, axis 1), one column per class in `classes`; "
                + (f"binary with a threshold: classes[1] where probabilities[:, 1] >= {predictor.threshold}, "
                   "else classes[0]" if predictor.threshold is not None and len(target.classes) == 2
                   else "the prediction is classes[argmax(output, axis 1)]"))
    else:
        rule = "prediction = output × std + mean (per output column: steps ahead of a forecast)"
    return {
        "format": 1, "deepfit_version": __version__, "model_name": predictor.architecture["name"],
        "task": predictor.task, "classes": target.classes if predictor.task == "classification" else None,
        "threshold": predictor.threshold,
        "input": {"name": formats.INPUT, "dtype": "float32", "shape": [batch, *map(int, input_shape)]},
        "output": {"name": formats.OUTPUT, "dtype": "float32", "shape": [batch, *map(int, output_shape)],
                   "meaning": "logits" if predictor.task == "classification" else "standardised values",
                   "rule": rule,
                   **({"mean": target.mean, "std": target.std} if predictor.task == "regression" else {})},
        "preprocess": predictor.modality.preprocess_spec(predictor.preprocessor),
        "series": predictor.series,
    }


def read_preprocess(path: str | Path) -> dict[str, Any]:
    """A preprocess.json (the export's folder, or the file) as a dict."""
    path = Path(path)
    return json.loads((path / PREPROCESS if path.is_dir() else path).read_text())


def _versions(fmt: str) -> dict[str, str]:
    versions = {"torch": torch.__version__}
    if fmt == "onnx":
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    return versions


def _remove_model(path: Path) -> None:
    for leftover in path.parent.glob(path.name + "*"):  # the file and any external data
        leftover.unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""
