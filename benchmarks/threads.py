"""Threads: deepfit's default choice against every fixed thread count, quiet and under load.

    python benchmarks/threads.py [--repeats 3] [--seconds 3] [--cases mlp,cnn,gru]

Each measurement is its own process (OpenMP reads its wait policy once, at start): the model of
the case, a synthetic batch, AdamW, and training steps for `--seconds` after a warm-up → steps/s.
The settings compared, all with OMP_WAIT_POLICY=PASSIVE as the `deepfit` command sets it:

    1 … cores     torch.set_num_threads(n)
    default       deepfit's choice (training/threads.py's choose_threads)

and, for reference, `torch` = torch's own default (one thread per core, OpenMP spinning as it
does when nothing is set). "loaded": one busy process per core (a bounded spin, stopped by the
benchmark) competes for the CPU, as a browser and an IDE do on a laptop. Settings are
interleaved across repeats so that drift of the machine spreads over all of them.
Writes benchmarks/threads.json; prints a markdown table for RESULTS.md (median steps/s, the
spread min–max, and each setting's time relative to the best fixed count of its condition).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = {  # name → (model, sample shape, batch size): the defaults of each kind of data
    "mlp": ("mlp", (64,), 64),  # digits: 64 features, deepfit's default batch
    "cnn": ("cnn", (1, 28, 28), 64),  # MNIST-sized images
    "gru": ("gru", (50, 8), 64),  # windows of 50 steps of 8 channels
}


def worker(case: str, threads: str, seconds: float) -> dict:
    """One measurement in this process: steps/s of `case` with `threads` (a count, "default"
    or "torch")."""
    import torch

    from deepfit.core.notes import Notes
    from deepfit.modalities import get_modality
    from deepfit.models.registry import InputSpec, OutputSpec
    from deepfit.models.transfer import build_model
    from deepfit.training.threads import apply_threads, choose_threads

    name, shape, batch = CASES[case]
    spec = (InputSpec(shape[0], shape[0]) if len(shape) == 1 else
            get_modality("image" if len(shape) == 3 else "sequence").example_input(shape))
    torch.manual_seed(0)
    model = build_model(name, {}, spec, OutputSpec("classification", 10), None, Notes())[0]
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    if threads == "default":
        choice = choose_threads(model, x, torch.device("cpu"))
        apply_threads(choice)
    elif threads != "torch":
        torch.set_num_threads(int(threads))
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    for _ in range(3):
        step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    return {"steps_per_s": steps / (time.perf_counter() - start), "threads": torch.get_num_threads()}


def _spin(deadline: float) -> None:
    while time.time() < deadline:
        pass


def measure(case: str, threads: str, seconds: float, loaded: bool) -> dict:
    env = dict(os.environ)
    if threads == "torch":
        env.pop("OMP_WAIT_POLICY", None)
    else:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    spinners = []
    if loaded:  # bounded: each stops by itself if the benchmark dies
        deadline = time.time() + seconds + 60
        spinners = [mp.Process(target=_spin, args=(deadline,), daemon=True)
                    for _ in range(os.cpu_count() or 1)]
        for p in spinners:
            p.start()
    try:
        out = subprocess.run([sys.executable, __file__, "--worker", case, threads, str(seconds)],
                             env=env, capture_output=True, text=True, check=True, timeout=600)
    finally:
        for p in spinners:
            p.terminate()
            p.join()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--conditions", default="quiet,loaded")
    parser.add_argument("--worker", nargs=3, metavar=("CASE", "THREADS", "SECONDS"))
    args = parser.parse_args()
    if args.worker:
        case, threads, seconds = args.worker
        print(json.dumps(worker(case, threads, float(seconds))))
        return
    cores = os.cpu_count() or 1
    settings = [str(n) for n in range(1, cores + 1)] + ["default", "torch"]
    results: dict = {}
    for condition in args.conditions.split(","):
        for case in args.cases.split(","):
            for r in range(args.repeats):
                for threads in settings:
                    got = measure(case, threads, args.seconds, condition == "loaded")
                    runs = results.setdefault(condition, {}).setdefault(case, {}).setdefault(threads, [])
                    runs.append(got)
                    print(f"{condition} {case} {threads:>7} run {r + 1}: {got['steps_per_s']:.1f} "
                          f"steps/s ({got['threads']} threads)", file=sys.stderr, flush=True)
    machine = {"processor": platform.processor() or platform.machine(), "cores": cores,
               "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
    (HERE / "threads.json").write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    print(table(results, settings, machine))


def table(results: dict, settings: list[str], machine: dict) -> str:
    lines = [f"{machine['cores']} cores, {machine['processor']}, {machine['date']}; steps/s, median "
             "(min–max) of the repeats; ×: the best fixed count's median / this one's (1.00 = as "
             "fast as the best fixed count; above 1 = slower)", "",
             "| condition | case | " + " | ".join(settings) + " |",
             "|---|---|" + "---|" * len(settings)]
    for condition, cases in results.items():
        for case, by in cases.items():
            med = {s: statistics.median(r["steps_per_s"] for r in by[s]) for s in settings}
            best = max(med[s] for s in settings if s.isdigit())
            cells = []
            for s in settings:
                rates = [r["steps_per_s"] for r in by[s]]
                chosen = by[s][0]["threads"]
                tag = f" [{chosen}t]" if not s.isdigit() else ""
                cells.append(f"{med[s]:.1f} ({min(rates):.1f}–{max(rates):.1f}) ×{best / med[s]:.2f}{tag}")
            lines.append(f"| {condition} | {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
