"""The study on Optuna's RDB storage: opening it (TPE sampler, median or Hyperband pruner,
heartbeat), the trials left RUNNING by a killed process failed and retried, the objective (one
deepfit run per trial, the test split never evaluated) and the worker processes.

    STUDY_DIR/study.db            the default storage (SQLite); --storage any Optuna URL
    STUDY_DIR/trials/trial-007/   each trial a normal deepfit run directory
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from deepfit.core.extras import import_extra
from deepfit.core.notes import Notes, logger
from deepfit.errors import SettingsError, TrainingFailed
from deepfit.lifecycle.prepare import Prepared, prepare_config
from deepfit.lifecycle.train import train_prepared
from deepfit.tools.tune.space import space_from_dict, suggest
from deepfit.training.callbacks.pruning import Pruning

# a trial silent for GRACE_SECONDS is another machine's dead one (a loaded 2-core machine can
# stall a live worker's heartbeat for tens of seconds); SQLite writers wait SQLITE_WAIT for the lock
HEARTBEAT_SECONDS, GRACE_SECONDS, MAX_RETRY, SQLITE_WAIT = 5, 120, 3, 60
DEFAULTS_ATTR = "deepfit:defaults"  # the first trial: the settings' defaults, the score to beat
PRUNERS = ("median", "hyperband", "none")


def optuna():
    return import_extra("optuna", "tune", "deepfit tune")


def open_study(spec: dict[str, Any]) -> Any:
    """Create or load the study `spec` names (load_if_exists: a rerun continues it)."""
    op = optuna()
    op.logging.set_verbosity(op.logging.WARNING)
    warnings.filterwarnings("ignore", category=op.exceptions.ExperimentalWarning)
    retry = getattr(op.storages, "RetryHeartbeatStaleTrialCallback", None) or op.storages.RetryFailedTrialCallback
    kw = ("heartbeat_stale_trial_callback" if hasattr(op.storages, "RetryHeartbeatStaleTrialCallback")
          else "failed_trial_callback")
    storage = spec["storage"]
    if storage.startswith(("sqlite:", "postgresql", "mysql")):
        engine = {"connect_args": {"timeout": SQLITE_WAIT}} if storage.startswith("sqlite:") else None
        storage = op.storages.RDBStorage(storage, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_SECONDS,
                                         grace_period=GRACE_SECONDS, **{kw: retry(max_retry=MAX_RETRY)})
    pruner = {"median": lambda: op.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
              "hyperband": lambda: op.pruners.HyperbandPruner(),
              "none": lambda: op.pruners.NopPruner()}[spec["pruner"]]()
    return op.create_study(storage=storage, study_name=spec["study_name"], direction=spec["direction"],
                           sampler=op.samplers.TPESampler(seed=spec["seed"]), pruner=pruner,
                           load_if_exists=True)


def fail_dead_trials(study: Any) -> list[int]:
    """Trials RUNNING in the storage whose process, on this machine, is gone (killed): marked
    FAIL and retried with the same parameters (Optuna's retry callback); → their numbers. Those of
    other machines are left to the storage's heartbeat (failed after GRACE_SECONDS of silence)."""
    op = optuna()
    retry = getattr(op.storages, "RetryHeartbeatStaleTrialCallback", None) or op.storages.RetryFailedTrialCallback
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(op.trial.TrialState.RUNNING,)):
        host, pid = trial.user_attrs.get("host"), trial.user_attrs.get("pid")
        if host != socket.gethostname() or pid is None or _alive(int(pid)):
            continue
        try:
            study._storage.set_trial_state_values(trial._trial_id, state=op.trial.TrialState.FAIL)
        except Exception:  # another process failed it first
            continue
        retry(max_retry=MAX_RETRY)(study, study._storage.get_trial(trial._trial_id))
        failed.append(trial.number)
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finished(study: Any) -> int:
    """Trials that count towards --trials: complete or pruned."""
    states = optuna().trial.TrialState
    return len(study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED)))


def objective(trial: Any, spec: dict[str, Any], prepared: Prepared) -> float:
    """One deepfit run with the trial's settings, its test split unevaluated; → the best epoch's
    validation `metric`. Raises optuna.TrialPruned after the pruned run is saved."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    params = {} if trial.user_attrs.get(DEFAULTS_ATTR) else suggest(trial, space_from_dict(spec["space"]))
    run_dir = Path(spec["out"]) / "trials" / f"trial-{trial.number:03d}"
    trial.set_user_attr("run_dir", str(run_dir))
    pruning = Pruning(trial, spec["metric"])
    # a trial is retried from the start, never resumed: no checkpoints unless asked for
    settings = {"checkpoint": False, **spec["fixed"], **params, "model": spec["model"],
                "monitor": spec["metric"], "evaluate_test": False, "report": False, "progress": False}
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))  # a trial's notes are in its config.json
    try:
        run = train_prepared(prepared, out=run_dir, callbacks=[pruning], **settings)
    except TrainingFailed as exc:  # a diverging LR, say: a failed trial, the study goes on
        trial.set_user_attr("error", str(exc))
        return math.nan
    finally:
        logger.setLevel(level)
    trial.set_user_attr("settings", {k: v for k, v in params.items()})
    trial.set_user_attr("epochs_run", len(run.history))
    if pruning.pruned:
        raise optuna().TrialPruned(run.config["train"].get("stop_reason"))
    return float(run.metrics[spec["metric"]])


def prepare_for(spec: dict[str, Any]) -> Prepared:
    """The split every trial trains on: the same source, data settings and seed."""
    from deepfit.config import split_settings

    return prepare_config(spec["source"], spec["y"], split_settings(spec["data"]), Notes(live=False))


def work(spec: dict[str, Any], n_trials: int, prepared: Prepared | None = None) -> None:
    """One worker: `n_trials` trials at most on the shared study (stopping early once the
    study holds `spec["trials"]` finished ones, or when the budget is spent)."""
    op = optuna()
    prepared = prepared if prepared is not None else prepare_for(spec)
    study = open_study(spec)
    if n_trials <= 0 or finished(study) >= spec["trials"]:
        return
    states = op.trial.TrialState
    started = time.perf_counter()

    def progress(study: Any, trial: Any) -> None:
        done = finished(study)
        pruned = len(study.get_trials(deepcopy=False, states=(states.PRUNED,)))
        try:
            best = f"best {spec['metric']} {study.best_value:.4g} (trial {study.best_trial.number})"
        except ValueError:
            best = "no complete trial yet"
        logger.info(f"tune: trial {min(done, spec['trials'])}/{spec['trials']} · {best} · "
                    f"{pruned} pruned · trial {trial.number} {trial.state.name.lower()} · "
                    f"{time.perf_counter() - started:.0f} s")

    study.optimize(lambda t: objective(t, spec, prepared), n_trials=n_trials,
                   timeout=spec["budget_seconds"], gc_after_trial=False,
                   callbacks=[op.study.MaxTrialsCallback(spec["trials"], states=(states.COMPLETE, states.PRUNED)),
                              progress])


def worker_main(spec: dict[str, Any], n_trials: int) -> None:
    """The entry of a worker process (multiprocessing spawn): logs on its stderr, one line each."""
    import sys

    handler = logging.StreamHandler(sys.stderr)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    work(spec, n_trials)


def run_workers(spec: dict[str, Any], jobs: int, remaining: int, prepared: Prepared) -> None:
    """`remaining` trials shared between `jobs` processes on the same storage (spawned, each
    running study.optimize), or run here when jobs is 1."""
    if jobs < 1:
        raise SettingsError(f"jobs must be at least 1, not {jobs}")
    if jobs == 1:
        work(spec, remaining, prepared)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    shares = [remaining // jobs + (i < remaining % jobs) for i in range(jobs)]
    procs = [ctx.Process(target=worker_main, args=(spec, n)) for n in shares if n > 0]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
    bad = [p.exitcode for p in procs if p.exitcode]
    if bad:
        raise TrainingFailed(f"{len(bad)} of the {len(procs)} tuning workers failed (exit codes "
                             f"{bad}); rerun the same command to continue the study")
