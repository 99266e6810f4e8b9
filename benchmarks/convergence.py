"""Time to accuracy: how long each training recipe takes to reach 99% of its own final test
score, on the bundled sets and on an image and a sequence set, all on the same splits.

    python benchmarks/convergence.py [--sets digits,wine] [--recipes before,after] [--seeds 0,1]

For every (set, recipe, seed) this runs `deepfit.train` as a user does (report included), and
after every epoch scores the test rows with the weights of that epoch (accuracy, or R² for
regression; the scoring time is taken out of the clock). It records the final test score (the
restored best weights), the epochs run, the wall time of the whole run, and the seconds from the
start until the first epoch whose test score was within 1% of the final one. Writes
benchmarks/convergence.json and prints a markdown table per set for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

import deepfit
from deepfit.lifecycle import train as train_module

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from test_sequences import which_comes_first  # noqa: E402  (the tests' sequence set)

RECIPES = {  # name → the settings a run is given (the rest are deepfit's defaults of the day)
    "before": {"batch_size": 64, "schedule": "plateau", "patience": 10, "epochs": 100},
    "b128": {"batch_size": 128, "schedule": "plateau", "patience": 10, "epochs": 100},
    "b256": {"batch_size": 256, "schedule": "plateau", "patience": 10, "epochs": 100},
    "b64-p5": {"batch_size": 64, "schedule": "plateau", "patience": 5, "epochs": 100},
    "b128-p5": {"batch_size": 128, "schedule": "plateau", "patience": 5, "epochs": 100},
    "cos30-b128": {"batch_size": 128, "schedule": "cosine", "patience": 10, "epochs": 30},
    "1cyc30-b128": {"batch_size": 128, "schedule": "onecycle", "patience": 10, "epochs": 30},
    "1cyc30-b128-lr3e-3": {"batch_size": 128, "schedule": "onecycle", "patience": 10,
                           "epochs": 30, "lr": 3e-3},
    "1cyc20-b256-lr3e-3": {"batch_size": 256, "schedule": "onecycle", "patience": 10,
                           "epochs": 20, "lr": 3e-3},
    "after": {},  # deepfit's defaults as they are now
}


def sets(root: Path) -> dict[str, dict]:
    """name → the train() arguments of each set (the image and sequence sets written here)."""
    digits = load_digits()
    images = root / "digits_images.npz"  # the 8×8 digits as [N, 1, 8, 8] images: a CNN's input
    np.savez(images, X=(digits.images[:, None] / 16.0).astype(np.float32), y=digits.target)
    X, y = which_comes_first(n=1200)  # which of a bump and a dip comes first
    order = root / "order.npz"
    np.savez(order, X=X[:, :, None], y=y)
    named = {name: {"source": name} for name in ("digits", "breast_cancer", "wine", "iris", "diabetes")}
    return named | {"digits-images": {"source": str(images)}, "order-gru": {"source": str(order)}}


class _Tracker:
    """After each epoch: the test score of the epoch's weights and the seconds since the run
    began, less the seconds spent scoring."""

    def __init__(self, prepared, start: float) -> None:
        X, y = prepared.test_frame
        self.x = torch.from_numpy(np.asarray(prepared.preprocessor.transform(X), dtype=np.float32))
        self.y = torch.from_numpy(prepared.target.transform(y))
        self.classification = prepared.data.task == "classification"
        self.start, self.scoring, self.points = start, 0.0, []

    def on_epoch_end(self, model: torch.nn.Module) -> None:
        t0 = time.perf_counter()
        elapsed = t0 - self.start - self.scoring  # the run's own seconds until this epoch ended
        was = model.training
        model.eval()
        with torch.no_grad():
            out = model(self.x.to(next(model.parameters()).device)).cpu()
        model.train(was)
        if self.classification:
            score = float((out.argmax(1) == self.y).float().mean())
        else:
            y, p = self.y.reshape(len(self.y), -1), out.reshape(len(out), -1)
            score = float(1 - ((y - p) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())
        self.scoring += time.perf_counter() - t0
        self.points.append((elapsed, score))


def run_one(settings: dict, recipe: dict, seed: int, out: Path) -> dict:
    start = time.perf_counter()
    tracker: list[_Tracker] = []
    original_fit, original_trainer = train_module.fit_prepared, train_module.Trainer

    def fit_prepared(cfg, model_settings, prepared, *args, **kw):
        tracker.append(_Tracker(prepared, start))
        return original_fit(cfg, model_settings, prepared, *args, **kw)

    class Trainer(original_trainer):
        def __init__(self, model, *args, callbacks=(), **kw):
            from deepfit.training.callbacks.base import Callback

            class Score(Callback):
                def on_epoch_end(self, trainer, state, logs):
                    tracker[-1].on_epoch_end(trainer.model)

            super().__init__(model, *args, callbacks=[*callbacks, Score()], **kw)

    train_module.fit_prepared, train_module.Trainer = fit_prepared, Trainer
    try:
        run = deepfit.train(**settings, **recipe, seed=seed, out=out, progress=False)
    finally:
        train_module.fit_prepared, train_module.Trainer = original_fit, original_trainer
    wall = time.perf_counter() - start - tracker[-1].scoring
    metrics = run.metrics
    final = metrics.get("accuracy", metrics.get("r2"))
    reached = next(t for t, s in tracker[-1].points if s >= final - 0.01 * abs(final))
    return {"score": final, "epochs": run.config["train"]["epochs_run"], "wall_s": wall,
            "to_99_s": reached, "steps_s": run.config["timings"]["steps"],
            "outside_s": run.config["timings"]["outside the steps"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=None, help="comma-separated (default: all)")
    parser.add_argument("--recipes", default=None, help="comma-separated (default: all)")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--out", default=str(HERE / "convergence.json"))
    args = parser.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        all_sets = sets(root)
        chosen = args.sets.split(",") if args.sets else list(all_sets)
        recipes = args.recipes.split(",") if args.recipes else list(RECIPES)
        for name in chosen:
            for recipe in recipes:
                for seed in (int(s) for s in args.seeds.split(",")):
                    got = run_one(all_sets[name], RECIPES[recipe], seed, root / f"{name}-{recipe}-{seed}")
                    results.setdefault(name, {}).setdefault(recipe, []).append(got)
                    print(f"{name} {recipe} seed {seed}: score {got['score']:.4f}, {got['epochs']} "
                          f"epochs, {got['wall_s']:.1f} s, 99% at {got['to_99_s']:.1f} s",
                          file=sys.stderr, flush=True)
    machine = {"processor": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d"),
               "torch": torch.__version__}
    Path(args.out).write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    print(table(results))


def table(results: dict) -> str:
    lines = ["| set | recipe | test score | epochs | wall s | 99% of final at s | steps s | outside s |",
             "|---|---|---|---|---|---|---|---|"]
    for name, by in results.items():
        for recipe, runs in by.items():
            def med(key: str, runs: list = runs) -> float:
                return statistics.median(r[key] for r in runs)

            lines.append(f"| {name} | {recipe} | {med('score'):.4f} | {med('epochs'):.0f} | "
                         f"{med('wall_s'):.1f} | {med('to_99_s'):.1f} | {med('steps_s'):.1f} | "
                         f"{med('outside_s'):.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
