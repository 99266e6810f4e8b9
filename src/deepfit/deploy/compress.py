"""`deepfit.compress`: smaller, faster versions of a trained run, each a normal run directory
beside it (it loads, predicts, benchmarks and serves like any run), and what each costs and buys.

    compress("runs/x", methods=["quantize", "prune", "distill"])
        → runs/x-int8       dynamic int8 Linear/LSTM/GRU layers, for the CPU (deploy/shrink.py)
          runs/x-pruned     50 % of the weights zero (global L1 magnitude), fine-tuned
          runs/x-distilled  a student with half the widths, trained on the teacher's soft targets
          runs/x/compress.json and compress.html: for the original and each result, the test
          score, latency p50/p95 at batch 1 and 64, size on disk and parameters

The training split is prepared again from the run's source and settings, as `train` prepared it
(the data's fingerprint must match the run's: otherwise a SettingsError, nothing written), so
fine-tunes and the student see the same rows and the test score is on the same held-out rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepfit.config import split_settings
from deepfit.core.io import new_run_dir, read_json, write_json, write_text
from deepfit.core.notes import Notes
from deepfit.errors import RunDirError, SettingsError
from deepfit.lifecycle.directory import load, save_run
from deepfit.lifecycle.prepare import Prepared, prepare_config
from deepfit.lifecycle.resume import run_record

METHODS = ("quantize", "prune", "distill")
SUFFIX = {"quantize": "int8", "prune": "pruned", "distill": "distilled"}


def compress(run: str | Path, methods: str | list[str] | tuple[str, ...] = ("quantize",), *,
             source: Any = None, sparsity: float = 0.5, epochs: int = 5,
             temperature: float = 4.0, alpha: float = 0.7, student: dict[str, Any] | None = None,
             repeats: int = 50, out: str | Path | None = None) -> dict[str, Any]:
    """Compress the run `run` by each of `methods` (quantize, prune, distill; a list or a
    comma-separated string), writing RUN-int8, RUN-pruned, RUN-distilled beside it (or under
    `out`). `source`: the run's data when its config.json holds no path (in-memory data).
    `sparsity`: the share of Linear/Conv weights prune zeroes; `epochs`: the fine-tune's and the
    student's epochs (early stopping on validation); `temperature`, `alpha`: distillation's T and
    the soft targets' weight (Hinton et al. 2015); `student`: the student's model settings
    (default: the teacher's with every width halved); `repeats`: timed forward calls per batch
    size. Returns plain data: {"original": row, "results": [row, …], "json": path, "html": path},
    a row being {method, run, score_name, score, latency_ms {batch_1, batch_64: {p50, p95}},
    size_bytes, params, …}. Raises SettingsError (unknown method, an existing output directory,
    data that are not the run's), RunDirError (an unfinished or damaged run)."""
    from deepfit.deploy import shrink
    from deepfit.deploy.compress_report import measure, write_html

    run = Path(run)
    chosen = _methods(methods)
    root = Path(out) if out is not None else run.parent
    targets = {m: root / f"{run.name}-{SUFFIX[m]}" for m in chosen}
    for path in targets.values():
        if path.exists():
            raise SettingsError(f"{path} exists already; remove it or choose another --out")
    teacher = load(run)
    record = run_record(run)
    if record.get("status") != "finished":
        raise RunDirError(f"{run} has not finished training; compress a finished run")
    needs_data = any(m != "quantize" for m in chosen)
    prepared, cfg = _prepared(run, record, source)
    rows = [measure("original", run, teacher, prepared, repeats)]
    for method in chosen:
        if method == "quantize":
            result, state = shrink.quantize(teacher)
        elif method == "prune":
            result, state = shrink.prune(teacher, prepared, cfg, sparsity, epochs)
        else:
            result, state = shrink.distill(teacher, prepared, cfg, temperature=temperature,
                                           alpha=alpha, epochs=epochs, student=student)
        _save(targets[method], result, state, record, prepared, method, run)
        row = measure(method, targets[method], load(targets[method]), prepared, repeats)
        if method == "prune":
            row["sparsity"] = shrink.sparsity_of(load(targets[method]).model)
        rows.append(row)
    summary = {"run": str(run), "methods": chosen, "original": rows[0], "results": rows[1:],
               "trained_on_split": needs_data, "settings": {
                   "sparsity": sparsity, "epochs": epochs, "temperature": temperature,
                   "alpha": alpha, "student": student, "repeats": repeats}}
    summary["json"], summary["html"] = str(run / "compress.json"), str(run / "compress.html")
    write_json(run / "compress.json", summary)
    write_text(run / "compress.html", write_html(summary))
    return summary


def _methods(methods: str | list[str] | tuple[str, ...]) -> list[str]:
    names = methods.split(",") if isinstance(methods, str) else list(methods)
    names = [str(n).strip() for n in names if str(n).strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise SettingsError(f"compress methods are {', '.join(METHODS)}; not {', '.join(unknown) or 'none'}")
    return list(dict.fromkeys(names))


def _prepared(run: Path, record: dict[str, Any], source: Any) -> tuple[Prepared, Any]:
    """The run's splits prepared again from its source and settings, checked to be its data."""
    settings = dict(record["settings"])
    source = source if source is not None else record["data"].get("source")
    if source is None:
        raise SettingsError(f"{run} was trained on in-memory data: pass them again (source=…)")
    cfg = split_settings(settings)
    prepared = prepare_config(source, None, cfg, Notes(live=False))
    if prepared.fingerprint != record["data"]["fingerprint"]:
        raise SettingsError(f"the data of {source} are not those {run} was trained on (their "
                            "fingerprint differs); compress needs the run's own training split")
    return prepared, cfg


def _save(path: Path, predictor: Any, state: Any, record: dict[str, Any], prepared: Prepared,
          method: str, original: Path) -> None:
    """A run directory for the compressed model: its config (the original's, with what was done),
    weights, metrics on the original's test split, history of its fine-tune and report."""
    config = {**record, "model": {**record["model"], "name": predictor.architecture["name"],
                                  "settings": predictor.architecture["settings"]},
              "compressed": {"method": method, "from": str(original),
                             **{k: predictor.architecture[k] for k in ("quantization", "pruned", "distilled")
                                if k in predictor.architecture}},
              "status": "finished"}
    config.pop("timings", None)
    evaluation = predictor.evaluation(*prepared.test_frame)
    with new_run_dir(path):
        save_run(path, predictor, config, state, evaluation.metrics, evaluation)


def compress_record(run: str | Path) -> dict[str, Any]:
    """compress.json of `run` (RunDirError when there is none)."""
    return read_json(Path(run) / "compress.json")


__all__ = ["METHODS", "compress", "compress_record"]
