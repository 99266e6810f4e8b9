"""The run's side of torchrun (training/distributed.py holds the collectives): what every
process must agree on before training, its rows of each batch, and its model."""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import nn

from deepfit.core.notes import Notes
from deepfit.core.words import plural
from deepfit.training.distributed import Distributed, digest


def fingerprint_parts(prepared: Any, cfg: Any, threads: int | None, checkpoint: dict | None) -> dict[str, str]:
    """Digests of what must be the same in every process: the data, the split (its targets),
    the preprocessing (the encoded rows), the settings, the thread count and the checkpoint
    resumed from (its step and weights)."""
    parts = {"data": prepared.fingerprint,
             "split": digest(prepared.sizes, *(pair[1] for pair in prepared.tensors.values())),
             "preprocessing": digest(*(pair[0] for pair in prepared.tensors.values())),
             "settings": digest(json.dumps(cfg.to_dict(), sort_keys=True, default=str)),
             "thread count": digest(threads, torch.__version__)}
    parts["checkpoint"] = digest(None if checkpoint is None else
                                 (checkpoint["state"]["step"], *checkpoint["model"].values()))
    return parts


def shard(train: Any, val: Any, dist: Distributed, batch_size: int, notes: Notes) -> None:
    """This process's rows of each training batch and its block of validation rows (noted)."""
    train.shard(dist.rank, dist.world_size)
    val.shard(dist.rank, dist.world_size)
    each = batch_size / dist.world_size
    notes.decide(f"torchrun: {plural(dist.world_size, 'process')} ({dist.backend} on {dist.device.type}); "
                 f"the global batch is --batch-size {batch_size}, split across them "
                 f"({each:g} rows each{'' if each.is_integer() else ', one more for some'}); "
                 "validation gathered from all, each row once")
    if train.n_used < train.n:
        notes.decide(f"{plural(train.n - train.n_used, 'training row')} left out of each epoch: the last "
                     "global batch had too few rows to give every process its share")


def prepare_model(model: nn.Module, dist: Distributed, sync_bn: bool, seed: int, notes: Notes) -> nn.Module:
    """--sync-bn on CUDA; then each process's own stream for dropout and augmentation."""
    if sync_bn:
        model, said = dist.convert_sync_bn(model)
        notes.decide(said)
    dist.seed_rank(seed)
    return model
