"""The same `deepfit train` on N processes under torchrun: PyTorch's DistributedDataParallel
(https://pytorch.org/docs/stable/notes/ddp.html), gloo on the CPU, NCCL on CUDA (one GPU per
local rank), and nothing home-made around it but what makes the numbers honest.

    torchrun --standalone --nproc-per-node 2 -m deepfit train digits      # or deepfit train --nproc 2

What each process does, and why:
- It reads and preprocesses the data itself, with the run's seed. The split and the fitted
  preprocessing are deterministic functions of (data, settings, seed), so every process gets the
  same ones with no broadcast of large arrays (which would hold every rank idle while rank 0
  reads, and need rank 0's memory twice); `check_same` proves it at start: a fingerprint of the
  split, the encoded rows, the settings and the checkpoint, gathered from every process, and a
  `DistributedMismatch` naming the part and the process when one differs.
- Training: batch k of an epoch is the global batch, rows [k·B, (k+1)·B) of the epoch's
  permutation (B = --batch-size); process r takes its rows r, r+N, … of it (data/batches.py's
  `shard`), and DDP averages the gradients, so the weights stay the same on every process.
- Evaluation: each process runs its contiguous block of the split's rows; `gather_rows` puts
  the blocks together with the padding removed, in the original order, so every process holds
  every row's output exactly once and computes the same metrics as one process would. Early
  stopping, the LR schedule and the best weights follow those metrics, identically everywhere.
- Rank 0 alone writes (run directory, checkpoints, history, report) and prints; the others
  log errors only. A checkpoint holds every process's generators (`rank_states`), so a resume
  with the same N continues exactly; another N is a `WorldSizeMismatch`.
- A failing process: torchrun's elastic agent sees it exit and stops the others (SIGTERM, then
  SIGKILL); the process group's timeout (`DEEPFIT_DIST_TIMEOUT`, seconds, default 300) ends a
  collective that waits for a process that is gone, for launchers that do not do that.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist
from torch import nn

from deepfit.core.io import write_json
from deepfit.core.words import plural
from deepfit.data.batches import shard_bounds
from deepfit.errors import DistributedMismatch, SettingsError, WorldSizeMismatch
from deepfit.training.state import seed_everything

TIMEOUT_ENV, DEFAULT_TIMEOUT = "DEEPFIT_DIST_TIMEOUT", 300.0
PROBE_ENV = "DEEPFIT_DDP_PROBE"  # tests: a folder where each process writes rank<R>.json
RANK_SEED = 1_000_003  # process r > 0 draws dropout and augmentation from seed + r·RANK_SEED


def launched() -> bool:
    """Whether this process was started by torchrun (its environment variables are set)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


@dataclass
class Distributed:
    """This process's place in a torchrun job, and the collectives deepfit uses."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------ start, end
    def check_same(self, parts: dict[str, str]) -> None:
        """Raise DistributedMismatch unless every process gave the same `parts` (name → digest)."""
        everyone = self.all_objects(parts)
        for rank, theirs in enumerate(everyone):
            for name, digest in everyone[0].items():
                if theirs.get(name) != digest:
                    raise DistributedMismatch(
                        f"process {rank} of {self.world_size} has another {name} than process 0: "
                        "every process must read the same data with the same settings (the same "
                        "files at the same paths, the same deepfit and torch versions)")

    def seed_rank(self, seed: int) -> None:
        """After the model is built (the same weights everywhere), give each process its own
        stream for dropout and augmentation; process 0 keeps the run's, as one process has it."""
        if self.rank:
            seed_everything(seed + RANK_SEED * self.rank)

    def wrap(self, model: nn.Module, compile: bool = False) -> nn.Module:
        """`model` in DistributedDataParallel (parameters broadcast from rank 0, gradients
        averaged in backward), then torch.compile'd when asked."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        ddp = DistributedDataParallel(model, device_ids=ids)
        return torch.compile(ddp) if compile else ddp

    def convert_sync_bn(self, model: nn.Module) -> tuple[nn.Module, str]:
        """--sync-bn: BatchNorm layers as SyncBatchNorm (statistics over the global batch), on
        CUDA; on the CPU, where SyncBatchNorm does not run, the model is left as it is."""
        if self.device.type != "cuda":
            return model, ("--sync-bn not used: SyncBatchNorm runs on CUDA only; each process's "
                           "BatchNorm normalises over its own rows")
        return (nn.SyncBatchNorm.convert_sync_batchnorm(model),
                "--sync-bn: BatchNorm statistics over the global batch (SyncBatchNorm)")

    def close(self) -> None:
        if tdist.is_initialized():
            tdist.destroy_process_group()

    # ------------------------------------------------------------ collectives
    def all_objects(self, obj: Any) -> list[Any]:
        """Every process's `obj` (small, picklable), in rank order, on every process."""
        out: list[Any] = [None] * self.world_size
        tdist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every process."""
        box = [obj]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, *flags: bool) -> list[bool]:
        """Each flag OR-ed over the processes (one small all-reduce; a host sync on CUDA)."""
        t = torch.tensor([int(f) for f in flags], dtype=torch.int64, device=self.device)
        tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def summed(self, t: torch.Tensor) -> torch.Tensor:
        """A copy of `t` summed over the processes."""
        total = t.detach().clone()
        tdist.all_reduce(total, op=tdist.ReduceOp.SUM)
        return total

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (BatchNorm's running statistics) in every process, as DDP gives
        them at the start of each training forward: each process's last batch has moved its own."""
        for buffer in model.buffers():
            tdist.broadcast(buffer, src=0)

    def gather_rows(self, local: torch.Tensor, n: int) -> torch.Tensor:
        """The rows [n, …] of a split from every process's block (`shard_bounds`): each block
        padded to ceil(n / N) rows, all-gathered, the padding dropped, in the split's order."""
        per = -(-n // self.world_size)
        padded = pad_rows(local, per)
        chunks = [torch.empty_like(padded) for _ in range(self.world_size)]
        tdist.all_gather(chunks, padded.contiguous())
        return unpad(chunks, n)

    # ------------------------------------------------------------ checkpoints
    def rank_states(self, rng: dict[str, Any], epoch_loss: torch.Tensor) -> dict[str, Any]:
        """What a checkpoint holds beyond rank 0's state: the process count and every process's
        generators and running loss (collective: every process calls it at the same step)."""
        mine = {"rng": rng, "epoch_loss": epoch_loss.detach().cpu()}
        return {"world_size": self.world_size, "ranks": self.all_objects(mine)}

    def own_state(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        """This process's part of a checkpoint `rank_states` wrote."""
        check_world_size(ckpt, self)
        return ckpt["ranks"][self.rank]

    def probe(self, **values: Any) -> None:
        """Tests only: with DEEPFIT_DDP_PROBE=DIR, add `values` to DIR/rank<R>.json."""
        folder = os.environ.get(PROBE_ENV)
        if folder:
            path = Path(folder) / f"rank{self.rank}.json"
            old = json.loads(path.read_text()) if path.exists() else {}
            write_json(path, old | values)


def init_from_env(device: str = "auto", timeout: float | None = None) -> Distributed | None:
    """Join the torchrun job this process belongs to, or None when not launched by torchrun.
    device: "auto" or "cuda" → cuda:LOCAL_RANK with NCCL when CUDA is there, else the CPU with
    gloo. Processes other than rank 0 then log errors only."""
    if not launched():
        return None
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if device not in ("auto", "cpu", "cuda"):
        raise SettingsError(f"under torchrun the device is cpu or cuda (one GPU per process), not {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise SettingsError("device 'cuda' is not available on this machine")
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda and local >= torch.cuda.device_count():
        raise SettingsError(f"local rank {local} has no GPU: this machine has "
                            f"{torch.cuda.device_count()}; start at most that many processes per node")
    where = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(where)
    seconds = timeout if timeout is not None else float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if cuda else "gloo",
                                 timeout=datetime.timedelta(seconds=seconds))
    if rank:
        logging.getLogger("deepfit").setLevel(logging.ERROR)  # one progress output: rank 0's
    return Distributed(rank, world, local, where, "nccl" if cuda else "gloo")


def pad_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """`t` [m, …] with zero rows appended to make [rows, …] (m <= rows)."""
    if len(t) == rows:
        return t
    pad = torch.zeros((rows - len(t), *t.shape[1:]), dtype=t.dtype, device=t.device)
    return torch.cat([t, pad])


def unpad(chunks: Sequence[torch.Tensor], n: int) -> torch.Tensor:
    """The split's n rows from the padded blocks of `len(chunks)` processes, in rank order
    (process r's real rows are the first hi - lo of its chunk, `shard_bounds`)."""
    world = len(chunks)
    kept = []
    for rank, chunk in enumerate(chunks):
        lo, hi = shard_bounds(n, world, rank)
        kept.append(chunk[: hi - lo])
    return torch.cat(kept)


def check_world_size(ckpt: dict[str, Any] | None, dist: Distributed | None) -> None:
    """WorldSizeMismatch when `ckpt` was written by another number of processes than now."""
    if ckpt is None:
        return
    saved, now = int(ckpt.get("world_size", 1)), dist.world_size if dist is not None else 1
    if saved != now:
        how = (f"torchrun --nproc-per-node {saved} -m deepfit train --resume RUN_DIR (or deepfit "
               f"train --nproc {saved} --resume RUN_DIR)" if saved > 1 else "deepfit train --resume "
               "RUN_DIR, without torchrun")
        raise WorldSizeMismatch(
            f"this run was checkpointed by {plural(saved, 'process')} and is resumed by {now}: the data order and each process's generators belong to {saved}; resume with {how}")


def digest(*items: Any) -> str:
    """A SHA-256 of tensors, arrays (their bytes) and anything else (its repr)."""
    h = hashlib.sha256()
    for item in items:
        if isinstance(item, torch.Tensor):
            h.update(item.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        elif hasattr(item, "fingerprint"):
            h.update(item.fingerprint())
        else:
            h.update(repr(item).encode())
    return h.hexdigest()


def weights_digest(model: nn.Module) -> str:
    """A SHA-256 of a model's state (for tests comparing the processes' final weights)."""
    return digest(*(v for _, v in sorted(model.state_dict().items())))
