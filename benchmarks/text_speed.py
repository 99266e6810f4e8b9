"""Training samples per second of the text models (by hand, not in the test suite): textcnn,
bigru and transformer at their default settings on a synthetic corpus whose texts all fill the
fixed length of 64 tokens (no padding), batch 64, one CPU thread by default.

Per model and repeat, two measurements taken in turn (so that the machine's drift hits both):
  deepfit    `deepfit.train` of a fresh model for `--epochs` epochs; each epoch after the first
             gives training rows ÷ its `train_seconds` (history.csv: the steps only, without
             validation)
  hand       a hand-written PyTorch loop over the same model built by name (randperm batches
             sliced from a tensor, AdamW, cross-entropy, gradient clipping at 1.0 as deepfit's
             default), on token ids of the same shape; each epoch after the first, timed alone
The script prints each model's median and quartiles of samples/s and the deepfit ÷ hand ratio
of the medians (1.00: as fast; below 1: deepfit slower).

    python benchmarks/text_speed.py [--rows 2048] [--repeats 3] [--epochs 3] [--threads 1]
        [--models textcnn,bigru,transformer]
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import deepfit
from deepfit.models import InputSpec, OutputSpec, create

LENGTH, BATCH = 64, 64


def corpus(n: int, seed: int = 0) -> pd.DataFrame:
    """n texts of 80 words from a 600-word vocabulary (so each fills 64 tokens); the label is
    whether w0 … w9 appear more often than w10 … w19."""
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 600, size=(n, 80))
    label = (words < 10).sum(1) > ((words >= 10) & (words < 20)).sum(1)
    return pd.DataFrame({"text": [" ".join(f"w{w}" for w in row) for row in words],
                         "label": np.where(label, "a", "b")})


def deepfit_rates(name: str, frame: pd.DataFrame, epochs: int, threads: int, tmp: Path,
                  seed: int) -> tuple[list[float], int, int]:
    """(samples/s of each epoch after the first, training rows, vocab size)."""
    run = deepfit.train(frame, target="label", model=name, epochs=epochs, batch_size=BATCH,
                        max_length=LENGTH, text_columns=["text"], threads=threads, seed=seed,
                        checkpoint=False, report=False, progress=False, patience=epochs,
                        out=tmp / f"{name}-{seed}")
    n_train = run.config["data"]["split_sizes"]["train"]
    vocab = run.predictor.architecture["input_spec"]["vocab_size"]
    return [n_train / h["train_seconds"] for h in run.history[1:]], n_train, vocab


def hand_rates(name: str, n_train: int, vocab: int, epochs: int, seed: int) -> list[float]:
    """samples/s of each epoch after the first of a hand-written loop over the same model."""
    torch.manual_seed(seed)
    spec = InputSpec(LENGTH, 0, modality="text", shape=(1, LENGTH), vocab_size=vocab)
    model = create(name, spec, OutputSpec("classification", 2))
    X = torch.randint(1, vocab, (n_train, LENGTH)).float()
    y = torch.randint(0, 2, (n_train,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2, foreach=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    rates = []
    for epoch in range(epochs):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(n_train)
        for i in range(0, n_train, BATCH):
            rows = order[i : i + BATCH]
            loss = loss_fn(model(X[rows]), y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
            optimizer.step()
        if epoch:
            rates.append(n_train / (time.perf_counter() - start))
    return rates


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = np.percentile(values, [25, 50, 75])
    return float(q[0]), float(q[1]), float(q[2])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--models", default="textcnn,bigru,transformer")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("deepfit").setLevel(logging.ERROR)  # the small-data warnings, each run
    frame = corpus(args.rows)
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
          f"thread, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| model | deepfit samples/s: median (quartiles) | hand loop samples/s | deepfit ÷ hand "
          "| epochs timed |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            ours, hand = [], []
            for r in range(args.repeats):
                rates, n_train, vocab = deepfit_rates(name, frame, args.epochs, args.threads,
                                                      Path(tmp), seed=r)
                torch.set_num_threads(args.threads)  # as deepfit left it for its run
                ours += rates
                hand += hand_rates(name, n_train, vocab, args.epochs, seed=r)
            (a0, a, a1), (b0, b, b1) = quartiles(ours), quartiles(hand)
            print(f"| {name} | {a:,.0f} ({a0:,.0f}–{a1:,.0f}) | {b:,.0f} ({b0:,.0f}–{b1:,.0f}) | "
                  f"{a / b:.2f} | {len(ours)} + {len(hand)} |", flush=True)
    print(f"(training rows per epoch: {n_train}; spread of deepfit's epochs: "
          f"{statistics.pstdev(ours) / statistics.mean(ours):.0%} of the mean, last model)")


if __name__ == "__main__":
    main()
