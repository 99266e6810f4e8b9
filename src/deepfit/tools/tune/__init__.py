"""`deepfit tune`: hyperparameter search on Optuna (Akiba et al. 2019) with TPE (Bergstra et al.
2011) and a pruner, on a real database, tied to deepfit's run directories.

    tune("breast_cancer", trials=20, epochs=30)      → plain data (also STUDY_DIR/tune.json)

Every trial trains on the same split and seed (prepared once per process); the test split is
never evaluated during the search, and once, for the best trial, at the end. The first trial of
a new study is the defaults, the score to beat. Rerunning the same call continues the study.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deepfit.config import DataConfig, field_names, split_settings
from deepfit.core.notes import Notes, logger
from deepfit.data.dataset import source_name
from deepfit.errors import SettingsError
from deepfit.evaluation.metrics import mode_of
from deepfit.lifecycle.directory import load
from deepfit.lifecycle.prepare import check_monitor, choose_model, prepare_config
from deepfit.models.registry import canonical
from deepfit.tools.tune import report
from deepfit.tools.tune.space import build_space, space_to_dict
from deepfit.tools.tune.study import (
    DEFAULTS_ATTR,
    PRUNERS,
    fail_dead_trials,
    finished,
    open_study,
    optuna,
    run_workers,
)


def tune(source: Any = None, y: Any = None, *, trials: int = 20, budget_seconds: float | None = None,
         metric: str = "val_loss", direction: str | None = None, jobs: int = 1,
         storage: str | None = None, study_name: str | None = None, out: str | Path | None = None,
         space: dict[str, Any] | str | Path | None = None, pruner: str = "median",
         defaults: bool = True, **settings: Any) -> dict[str, Any]:
    """Search the settings of `settings["model"]` (default: the data's) and the trainer's for the
    best validation `metric` over `trials` trials (complete or pruned; `budget_seconds` bounds the
    search's wall time), with `jobs` worker processes on `storage` (an Optuna storage URL;
    default sqlite:///OUT/study.db). `settings` given are fixed; `space` (a dict or a JSON file)
    overrides or fixes ranges. → plain data: leaderboard, best trial and run directory, its
    settings and test metrics, importances, plots, the `deepfit train` command, "beats_default".
    Raises SettingsError (an unknown space name, a bad metric) before any trial."""
    op = optuna()  # MissingExtraError naming deepfit[tune] when Optuna is missing
    if trials < 1 or pruner not in PRUNERS or (direction not in (None, "minimize", "maximize")):
        raise SettingsError(f"tune needs trials >= 1, pruner in {', '.join(PRUNERS)} and direction "
                            f"minimize or maximize, not {trials}, {pruner!r}, {direction!r}")
    settings = {k: v for k, v in settings.items() if v is not None}
    settings.pop("progress", None)
    cfg = split_settings({**settings, "monitor": metric})
    data_keys = set(field_names(DataConfig)) | {"seed"}
    data = {k: v for k, v in settings.items() if k in data_keys} | {"monitor": metric}
    prepared = prepare_config(source, y, cfg, Notes(live=False))  # the test split is not touched
    check_monitor(metric, prepared.data.task)
    model = canonical(choose_model(cfg, prepared.data, Notes(live=False)).model.name)
    fixed = {k: v for k, v in settings.items() if k not in data_keys and k != "model"}
    ranges, fixed = build_space(model, fixed, space)
    direction = direction or ("maximize" if mode_of(metric) == "max" else "minimize")
    path = Path(out) if out else Path("runs") / f"tune-{source_name(source)}"
    path.mkdir(parents=True, exist_ok=True)
    spec = {"source": source, "y": y, "data": data, "model": model, "fixed": fixed,
            "space": space_to_dict(ranges), "metric": metric, "direction": direction,
            "storage": storage or f"sqlite:///{(path / 'study.db').resolve()}",
            "study_name": study_name or f"tune-{source_name(source)}", "trials": trials,
            "budget_seconds": budget_seconds, "out": str(path), "pruner": pruner,
            "seed": int(settings.get("seed", 0))}
    study = open_study(spec)
    if (retried := fail_dead_trials(study)):
        logger.info(f"tune: trial {', '.join(map(str, retried))} was left running by a stopped "
                    "process: marked failed, retried with the same settings")
    if defaults and not study.get_trials(deepcopy=False):
        study.enqueue_trial({}, user_attrs={DEFAULTS_ATTR: True})
    remaining = trials - finished(study)
    logger.info(f"tune: {model}, {len(ranges)} settings searched ({', '.join(ranges)}), "
                f"{metric} {direction[:3]}imised on the validation split; {finished(study)} of "
                f"{trials} trials done, {max(remaining, 0)} to run on {jobs} worker"
                f"{'s' * (jobs != 1)}; storage {spec['storage']}")
    started = time.perf_counter()
    if remaining > 0:
        run_workers(spec, jobs, remaining, prepared)
    result = summarise(op, open_study(spec), spec, prepared, source)
    result["search_seconds"] = time.perf_counter() - started
    report.write(result, path)
    return result


def summarise(op: Any, study: Any, spec: dict[str, Any], prepared: Any, source: Any) -> dict[str, Any]:
    """The study as plain data; the best trial evaluated on the test split once per study (kept
    in the study's user attributes, so a rerun reports it without evaluating again)."""
    complete = study.get_trials(deepcopy=False, states=(op.trial.TrialState.COMPLETE,))
    if not complete:
        raise SettingsError("no trial completed: see the trials' run directories in "
                            f"{spec['out']}/trials and their errors in tune.json")
    best = study.best_trial
    stored = study.user_attrs.get("test")
    if stored and stored.get("trial") == best.number:
        test_metrics = stored["metrics"]
    else:
        evaluation = load(best.user_attrs["run_dir"]).evaluation(*prepared.test_frame)
        test_metrics = {k: v for k, v in evaluation.metrics.items() if isinstance(v, (int, float))}
        study.set_user_attr("test", {"trial": best.number, "metrics": test_metrics})
    default = next((t for t in complete if t.user_attrs.get(DEFAULTS_ATTR)), None)
    better = (lambda a, b: a > b) if spec["direction"] == "maximize" else (lambda a, b: a < b)
    if default is None:
        verdict, beats = "the defaults were not among the trials", None
    elif best.number == default.number or not better(best.value, default.value):
        verdict, beats = (f"no trial beat the defaults' {spec['metric']} {default.value:.4g} "
                          f"(trial {default.number})"), False
    else:
        verdict, beats = (f"trial {best.number} beat the defaults' {spec['metric']} "
                          f"{default.value:.4g} with {best.value:.4g}"), True
    settings = {**spec["fixed"], **best.params, "model": spec["model"], "monitor": spec["metric"]}
    data = {k: v for k, v in spec["data"].items() if k != "monitor"}
    found, note = report.importances(study, list(spec["space"]))
    states = op.trial.TrialState
    return {"source": str(source), "study_name": spec["study_name"], "storage": spec["storage"],
            "metric": spec["metric"], "direction": spec["direction"], "trials": spec["trials"],
            "leaderboard": report.leaderboard(study, spec["direction"]),
            "pruned": len(study.get_trials(deepcopy=False, states=(states.PRUNED,))),
            "failed": len(study.get_trials(deepcopy=False, states=(states.FAIL,))),
            "best_trial": best.number, "best_value": best.value, "best_params": dict(best.params),
            "best_run": best.user_attrs["run_dir"], "test_metrics": test_metrics,
            "default_value": default.value if default else None, "beats_default": beats,
            "verdict": verdict, "importances": found, "importances_note": note,
            "plots": report.plots(study, Path(spec["out"]) / "plots"),
            "space": spec["space"], "fixed": spec["fixed"],
            "command": report.train_command(source, {**data, **settings})}
