"""The flags of `deepfit train` (also read by check, which leaves the training ones unset):
their parser and the settings dictionary they give the Python API."""

from __future__ import annotations

import argparse
from typing import Any

from deepfit.cli.tools import set_pairs
from deepfit.config import SCHEDULES, TASKS

SOURCE_HELP = ("a bundled dataset (digits, breast_cancer, wine, iris, diabetes), torchvision's mnist, "
               "fashion-mnist or cifar10 (from --data-root; their own test set is the test split), "
               "a CSV/Parquet file (a time series with --window), an .npz with X and y (tables, "
               "sequences [N, T, C], images), or a folder of class subfolders of images")


def add_data_root_flags(p: argparse.ArgumentParser) -> None:
    """Where torchvision's named sets are (modalities/image/named_sets.py)."""
    p.add_argument("--data-root", metavar="DIR", help="mnist, fashion-mnist, cifar10: the folder "
                   "holding torchvision's files (DIR/MNIST/raw, DIR/FashionMNIST/raw, "
                   "DIR/cifar-10-batches-py); default $DEEPFIT_DATA, else ./data")
    p.add_argument("--download", action="store_true", default=None, help="download missing "
                   "files of mnist, fashion-mnist or cifar10 into the data root (needs a network)")


def lr_value(text: str) -> float | str:
    """--lr: a number, or auto (the LR range test's suggestion)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number or auto, not {text!r}") from None


def add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train, validate, evaluate and save a model")
    p.add_argument("source", nargs="?", help=SOURCE_HELP)
    p.add_argument("--target", help="the target column of a CSV/Parquet file")
    p.add_argument("--task", choices=TASKS, help="override the inferred task; anomaly: an "
                   "autoencoder scores each row by its reconstruction error (no --target needed; "
                   "0/1 labels given with --target only evaluate)")
    p.add_argument("--val-size", type=float, help="validation fraction (default 0.15)")
    p.add_argument("--test-size", type=float, help="test fraction (default 0.15)")
    p.add_argument("--test", help="a held-out file to evaluate on instead of a test split")
    add_data_root_flags(p)
    p.add_argument("--model", help="model name (default: the data's; mlp for tables, cnn1d for sequences, "
                   "cnn for images); resnet18/34/50, transfer:<torchvision model>, transfer (--weights RUN_DIR)")
    p.add_argument("--hidden", help="hidden layer widths, e.g. 128,64,32")
    p.add_argument("--dropout", type=float, help="dropout rate (default 0.3)")
    p.add_argument("--depth", type=int, help="layers or blocks: mlp, resmlp, gru, lstm, transformer, cnn1d")
    p.add_argument("--width", type=int, help="their width: units, hidden size or channels")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other model setting, e.g. --set hidden=256,128")
    p.add_argument("--window", type=int, help="a CSV time series: windows of this many rows are the "
                   "sequences, split by time (training windows first)")
    p.add_argument("--horizon", type=int, help="with --window: forecast this many steps (default 1)")
    p.add_argument("--modality", metavar="{tabular,sequence,image}",
                   help="read the data as this kind, a registered modality (default: from the data and "
                   "the model); an .npz with X [N, T] is a table unless --modality sequence or a sequence model")
    p.add_argument("--epochs", type=int, help="maximum epochs (default 100)")
    p.add_argument("--batch-size", type=int, help="batch size (default 64)")
    p.add_argument("--lr", type=lr_value, help="learning rate (default 1e-3); auto: the LR range "
                   "test's suggestion (deepfit lr-find), said in the notes")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 0.01)")
    p.add_argument("--schedule", choices=SCHEDULES, help="LR schedule (default plateau)")
    p.add_argument("--clip-norm", type=float, help="gradient clipping max norm; 0 = off (default 1)")
    p.add_argument("--patience", type=int, help="early-stopping patience in epochs (default 10)")
    p.add_argument("--max-seconds", type=float, help="wall-clock training budget: stop after this "
                   "many seconds of training (the best weights are still restored)")
    p.add_argument("--min-delta", type=float, help="smallest change that counts as improvement")
    p.add_argument("--monitor", help="what early stopping and the best checkpoint follow: val_loss "
                   "(default), val_accuracy, val_f1_macro (good under imbalance), val_balanced_accuracy, "
                   "train_loss; regression: val_mse, val_rmse, val_mae, val_r2")
    p.add_argument("--imbalance", choices=("auto", "none", "weights", "sampler", "focal"),
                   help="class imbalance: inverse-frequency class weights in the loss, oversampling of "
                   "the training split, or focal loss; auto (default): weights above a 3:1 ratio")
    p.add_argument("--focal-gamma", type=float, help="focusing parameter of --imbalance focal (default 2)")
    p.add_argument("--threshold", help="binary decision threshold on P(second class): auto (maximise "
                   "validation F1), a number in (0, 1), or none (default: the most probable class)")
    p.add_argument("--contamination", type=float, help="--task anomaly: the share of validation "
                   "rows above the anomaly threshold, its (1 - c) quantile of their reconstruction "
                   "errors (default 0.01)")
    p.add_argument("--no-report", dest="report", action="store_false", default=None,
                   help="write no plots and no report.html")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--device", help="auto, cpu, cuda or mps (default auto)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: chosen for the "
                   "model's size, said in the notes: 1 for small operations, every core for large)")
    p.add_argument("--log-every", type=int, metavar="N", help="without a terminal (piped, "
                   "redirected): the line per epoch on stderr every N epochs, and the last (default 1)")
    p.add_argument("--log", action="append", choices=("csv", "tensorboard", "mlflow"), metavar="LOGGER",
                   help="also log the run to tensorboard (RUN_DIR/tensorboard) or mlflow; may be "
                   "given more than once; csv (history.csv) is always written")
    p.add_argument("--mlflow-uri", metavar="URI", help="--log mlflow's tracking URI (default "
                   "sqlite:///mlruns.db, a database in the working directory)")
    p.add_argument("--log-every-n-steps", type=int, metavar="N", help="loggers also get the running "
                   "training loss every N steps (default: only at epoch ends; each costs a device sync)")
    p.add_argument("--timings", action="store_true", help="print the seconds of each stage "
                   "(reading, audit, steps, report, saving…; config.json keeps them either way)")
    p.add_argument("--precision", choices=("32", "bf16", "fp16"), help="autocast precision (default 32)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--loader", choices=("auto", "memory", "stream"),
                   help="in-memory fast path or a streaming DataLoader (default auto)")
    p.add_argument("--workers", type=int, help="DataLoader workers of the streaming path (default 2)")
    p.add_argument("--no-checkpoint", dest="checkpoint", action="store_false", default=None,
                   help="write no checkpoints (then the run cannot be resumed)")
    p.add_argument("--checkpoint-every-steps", type=int, metavar="N",
                   help="also checkpoint within an epoch every N steps (bounds what a kill loses)")
    p.add_argument("--checkpoint-every-seconds", type=float, metavar="S",
                   help="and within an epoch once S seconds passed since the last checkpoint "
                        "(default 300; 0: only at epoch ends)")
    p.add_argument("--init-weights", help="start from these weights (.safetensors, or .pt/.pth/.bin "
                   "read with torch.load(weights_only=True))")
    _add_image_flags(p)
    _add_text_flags(p)
    p.add_argument("--check", action="store_true", default=None,
                   help="run the model sanity checks before training (the data audit always runs)")
    p.add_argument("--force", action="store_true", default=None,
                   help="train even when a check finds an error")
    p.add_argument("--out", help="run directory (default runs/<source>-<timestamp>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint")
    p.add_argument("--nproc", type=int, metavar="N", help="train on N processes of this machine "
                   "(torchrun, PyTorch DDP: gloo on the CPU, one GPU each with NCCL); --batch-size "
                   "is the global batch, split across them")
    p.add_argument("--sync-bn", action="store_true", default=None, help="under torchrun on CUDA: "
                   "BatchNorm statistics over the global batch (SyncBatchNorm)")


def _add_image_flags(p: argparse.ArgumentParser) -> None:
    """Images and transfer learning (modalities/image/preprocess.py, modalities/image/augment.py, models/transfer.py)."""
    p.add_argument("--image-size", type=int, help="images: resize to this side in pixels "
                   "(default: a folder's median side; arrays keep their size)")
    p.add_argument("--cache-limit-mb", type=float, help="image folders: decode into memory when "
                   "the images take at most this many MB (N×C×H×W bytes), else stream them from "
                   "disk (default: $DEEPFIT_CACHE_LIMIT_MB, else 5%% of the available memory)")
    p.add_argument("--augment", choices=("none", "light", "strong"), help="images, training batches "
                   "only: light (default) = random crop with padding; strong = + small rotations and, "
                   "for RGB, colour jitter")
    p.add_argument("--flip", action="store_true", default=None, help="images: random horizontal "
                   "flips too (off by default: they break digits and text)")
    p.add_argument("--weights", help="transfer learning, a new head for these classes: DEFAULT "
                   "(torchvision's, from the local torch cache, with --model transfer:<name>), a "
                   ".safetensors/.pt file, or a deepfit run directory (with --model transfer); none: "
                   "transfer:<name> from random weights")
    p.add_argument("--freeze-epochs", type=int, help="with --weights: epochs that train the head "
                   "alone, the rest frozen (default 3)")
    p.add_argument("--unfreeze-every", type=int, help="with --weights: then unfreeze one layer "
                   "group, from the top, every N epochs; 0 = all at once (default 1)")
    p.add_argument("--backbone-lr-mult", type=float, help="with --weights: discriminative LRs, the "
                   "head's is --lr, the lowest layer group's this × --lr, geometric between (default 0.1)")


def _add_text_flags(p: argparse.ArgumentParser) -> None:
    """Text columns and their tokenizer (modalities/text/)."""
    p.add_argument("--text-columns", metavar="A,B", help="read these columns as free text "
                   "(default: string columns of long, many-worded, mostly unique values)")
    p.add_argument("--no-text", dest="text", action="store_false", default=None,
                   help="read no column as text: every string column is a category")
    p.add_argument("--vocab-size", type=int, help="text: tokens of the tokenizer trained on the "
                   "training split (default 8000)")
    p.add_argument("--max-length", type=int, help="text: tokens kept of each text, the rest "
                   "truncated (default: the 95th percentile of the training lengths, at most 512)")
    p.add_argument("--tokenizer", choices=("wordpiece", "bpe"), help="text: the tokenizer's model "
                   "(HF tokenizers; default wordpiece)")


TRAIN_KEYS = ("target", "task", "val_size", "test_size", "test", "model", "hidden", "dropout",
              "epochs", "batch_size", "lr", "weight_decay", "schedule", "clip_norm", "patience",
              "min_delta", "monitor", "seed", "device", "threads", "precision", "compile", "loader",
              "workers", "checkpoint", "init_weights", "check", "force", "imbalance", "focal_gamma", "threshold", "report")


TRAIN_KEYS += ("image_size", "cache_limit_mb", "augment", "flip", "weights", "freeze_epochs", "unfreeze_every",
               "backbone_lr_mult")
TRAIN_KEYS += ("modality", "window", "horizon", "depth", "width", "max_seconds")
TRAIN_KEYS += ("data_root", "download")
TRAIN_KEYS += ("log_every",)
TRAIN_KEYS += ("contamination",)
TRAIN_KEYS += ("log", "mlflow_uri", "log_every_n_steps")
TRAIN_KEYS += ("sync_bn",)
TRAIN_KEYS += ("text_columns", "text", "vocab_size", "max_length", "tokenizer")


def train_settings(args: argparse.Namespace) -> dict[str, Any]:
    settings = {k: getattr(args, k) for k in TRAIN_KEYS if getattr(args, k) is not None}
    return settings | set_pairs(args.set)
