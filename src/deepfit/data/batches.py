"""Batches for the trainer: one interface, two paths.

`InMemoryBatches` is the fast path: the tensors live on the training device once, and an epoch
is a shuffled index sliced into batches (no per-sample `__getitem__`, no collate, no copy).
`StreamingBatches` is the path for data that do not fit: a DataLoader with workers, pinned
memory and persistent workers, fetching each batch with one batched index into the source
(tensors held on the host, or a folder of image files decoded in the workers, then standardised
on the training device by `transform`: modalities/image/files.py).

Both follow the same order: the order of epoch `e` depends only on (seed, e), so the two paths
give identical weights, and the data-order position of a run is just (epoch, batch index):
resume needs no generator state for it. With per-row `weights` (oversampling of a training
split), an epoch is `n` rows drawn with replacement, row i with probability ∝ weights[i], from
that same per-epoch generator; evaluation batches are never resampled.

`drop_single` (training batches, decided once before training: lifecycle/batches.py's run_batches sets it when the
model has BatchNorm): when the rows of an epoch leave a last batch of exactly one row, that row
is left out of the epoch (fastai's `drop_last`, for that one case). It is a fixed length for the
whole run, so the fast path slices its randperm to `n_used` and the streamed path's sampler
stops at the same row: no per-step check, no host sync, the same batches on both paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from deepfit.errors import SettingsError

Batch = tuple[torch.Tensor, torch.Tensor]
EVAL_BATCH = 4096
EVAL_BYTES = 2**26  # an evaluation batch's float32 inputs take at most this (64 MiB): big images
#                     go fewer at a time; both paths use the same rule, so they agree to the bit
LOADERS = ("auto", "memory", "stream")
MEMORY_SHARE = 0.5  # the fast path is chosen when the data take at most this share of the device


def eval_rows(row_values: int) -> int:
    """Rows per evaluation batch for rows of `row_values` float32 values (EVAL_BATCH at most)."""
    return max(1, min(EVAL_BATCH, EVAL_BYTES // (4 * max(1, row_values))))


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The CPU generator that shuffles epoch `epoch` of a run seeded with `seed`."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63))


def drops_last_row(n: int, batch_size: int, shuffle: bool = True) -> bool:
    """Whether `n` shuffled training rows in batches of `batch_size` leave a last batch of one row."""
    return shuffle and n > 1 and n % batch_size == 1


def shard_bounds(n: int, world: int, rank: int) -> tuple[int, int]:
    """The evaluation rows [lo, hi) of process `rank` of `world`: contiguous blocks in rank
    order whose sizes differ by one at most (numpy's array_split), so that the blocks put end
    to end are the split's rows, each once, in their order."""
    per, extra = divmod(n, world)
    lo = rank * per + min(rank, extra)
    return lo, lo + per + (rank < extra)


class _Order:
    """The rows of an epoch and how they fall into batches (shared by both paths).

    Under torchrun (`shard`), batch k of an epoch is still rows [k·B, (k+1)·B) of the epoch's
    order, B = batch_size the global batch; process r takes its rows r, r+W, r+2W, … (W
    processes), and evaluation rows come in contiguous blocks (`shard_bounds`)."""

    rank, world, offset = 0, 1, 0  # one process unless `shard` says otherwise

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int,
                 weights: torch.Tensor | None = None, drop_single: bool = True) -> None:
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        if weights is not None:
            if not shuffle:
                raise ValueError("resampling weights need shuffle=True (they are for training)")
            weights = torch.as_tensor(weights, dtype=torch.float64).cpu()
            if weights.shape != (n,) or not bool((weights >= 0).all()) or float(weights.sum()) <= 0:
                raise ValueError(f"weights must be {n} non-negative numbers, not all zero")
        self.weights = weights  # [n] sampling weight of each row, or None: a plain shuffle
        # A last batch of one sample breaks BatchNorm in training; that sample is left out of
        # the epoch (it is in other batches in other epochs, since the order is shuffled).
        self.n_used = n - 1 if drop_single and drops_last_row(n, batch_size, shuffle) else n
        self.drop_single = drop_single

    def shard(self, rank: int, world: int) -> None:
        """Make this process `rank` of `world` (training/distributed.py). Each process then gets
        at least one row of every training batch (two with BatchNorm, `drop_single`): a last
        global batch with fewer rows than that is left out of every epoch, as one row is alone."""
        least = world * (2 if self.drop_single else 1)
        if self.shuffle and self.batch_size < least:
            raise SettingsError(f"a batch of {self.batch_size} rows cannot be split over {world} "
                             f"processes (at least {least} rows)")
        self.rank, self.world = rank, world
        tail = self.n % self.batch_size if self.shuffle else 0
        if 0 < tail < least:
            self.n_used = self.n - tail
        if self.n_used == 0 or self.n < world:
            raise SettingsError(f"{self.n} rows cannot be split over {world} processes")

    def eval_range(self) -> tuple[int, int]:
        """This process's evaluation rows [lo, hi) (all of them in one process)."""
        return shard_bounds(self.n, self.world, self.rank)

    def __len__(self) -> int:
        return -(-self.n_used // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.offset, self.offset + self.n)
        generator = epoch_generator(self.seed, epoch)
        if self.weights is not None:  # oversampling: n draws with replacement
            return torch.multinomial(self.weights, self.n, replacement=True, generator=generator)
        return torch.randperm(self.n, generator=generator)

    def starts(self, start: int) -> range:
        return range(start * self.batch_size, self.n_used, self.batch_size)


class InMemoryBatches(_Order):
    """Shuffled (or ordered) batches sliced from tensors held on one device."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, device: torch.device | str = "cpu", channels_last: bool = False,
                 weights: torch.Tensor | None = None, drop_single: bool = True) -> None:
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        super().__init__(len(X), batch_size, shuffle, seed, weights, drop_single)
        self.X = X.to(device)
        if channels_last and self.X.ndim == 4:
            self.X = self.X.contiguous(memory_format=torch.channels_last)
        self.y = y.to(device)

    @property
    def n_samples(self) -> int:
        return self.n

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The batches of one epoch, from batch index `start` (a resumed epoch skips the rest)."""
        if not self.shuffle and self.world == 1:  # plain slices: no gather at all
            for i in self.starts(start):
                yield self.X[i : i + self.batch_size], self.y[i : i + self.batch_size]
            return
        order = self.order(epoch).to(self.X.device)
        for i in self.starts(start):
            idx = order[i : i + self.batch_size]
            if self.world > 1:  # this process's rows of the global batch
                idx = idx[self.rank :: self.world]
            yield self.X[idx], self.y[idx]

    def eval_batches(self) -> Iterator[Batch]:
        """All rows in order, in large chunks (for evaluation)."""
        rows = eval_rows(self.X[0].numel() if self.n else 1)
        lo, hi = self.eval_range()  # [0, n) in one process
        for i in range(lo, hi, rows):
            end = min(i + rows, hi)
            yield self.X[i:end], self.y[i:end]


class TensorSource(Dataset):
    """A map-style dataset over tensors that fetches a whole batch with one index."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor) -> None:
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, index: torch.Tensor) -> Batch:  # index: a batch of row numbers
        return self.X[index], self.y[index]


class _BatchIndices(Sampler):
    """Yields one index tensor per batch, in the epoch's order, from a start batch."""

    def __init__(self, order: _Order) -> None:
        self.plan, self.epoch, self.start = order, 0, 0

    def __len__(self) -> int:
        return len(self.plan) - self.start

    def __iter__(self) -> Iterator[torch.Tensor]:
        rows, world = self.plan.order(self.epoch), self.plan.world
        for i in self.plan.starts(self.start):
            idx = rows[i : i + self.plan.batch_size]
            yield idx[self.plan.rank :: world] if world > 1 else idx


class StreamingBatches(_Order):
    """Batches through a DataLoader: workers, pinned memory, persistent workers. `transform`
    (on the training device, whole batches): what turns the source's batches into model inputs
    (a folder's uint8 images → standardised float32). A source may give (DeepfitError, None) for
    a batch it cannot make; it is raised here, in the main process."""

    def __init__(self, source: Dataset, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 device: torch.device | str = "cpu", workers: int = 2,
                 weights: torch.Tensor | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 eval_workers: int = 0, row_values: int = 1,
                 channels_last: bool = False, drop_single: bool = True) -> None:
        super().__init__(len(source), batch_size, shuffle, seed, weights, drop_single)
        self.source, self.device, self.transform = source, torch.device(device), transform
        self.channels_last = channels_last  # images on a GPU: the memory format of the fast path
        self.sampler = _BatchIndices(self)
        # Each loader draws its workers' base seed from its own generator, never from the
        # global one, so the dropout masks (global generator) match the fast path's.
        self.loader = _loader(source, self.sampler, workers, self.device, seed)
        # row_values: the values of one model input (C·H·W for images), for the evaluation batches
        self.eval_sampler = _BatchIndices(_Order(self.n, eval_rows(row_values), False, seed))
        self.eval_loader = _loader(source, self.eval_sampler, eval_workers, self.device, seed)

    @property
    def n_samples(self) -> int:
        return self.n

    def shard(self, rank: int, world: int) -> None:
        super().shard(rank, world)
        lo, hi = self.eval_range()  # the evaluation loader reads this process's block alone
        plan = _Order(hi - lo, self.eval_sampler.plan.batch_size, False, self.seed)
        plan.offset = lo
        self.eval_sampler.plan = plan

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        self.sampler.epoch, self.sampler.start = epoch, start
        for batch in self.loader:
            yield self._on_device(*batch)

    def eval_batches(self) -> Iterator[Batch]:
        for batch in self.eval_loader:
            yield self._on_device(*batch)

    def _on_device(self, xb: Any, yb: Any) -> Batch:
        if isinstance(xb, BaseException):  # a batch the source could not make (a bad file)
            raise xb
        xb, yb = xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)
        if self.transform is not None:
            xb = self.transform(xb)
        if self.channels_last and xb.ndim == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return xb, yb


def _loader(source: Dataset, sampler: Sampler, workers: int, device: torch.device,
            seed: int) -> DataLoader:
    return DataLoader(source, sampler=sampler, batch_size=None, num_workers=workers,
                      pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                      generator=torch.Generator().manual_seed(seed))


def choose_loader(loader: str, nbytes: int, device: torch.device) -> str:
    """'memory' when the data fit comfortably on the training device, else 'stream'."""
    if loader != "auto":
        return loader
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return "memory" if nbytes <= MEMORY_SHARE * free else "stream"
    return "memory"  # on the CPU the data are in memory already


def make_batches(X: Any, y: torch.Tensor, batch_size: int, *, loader: str, shuffle: bool,
                 seed: int, device: torch.device, workers: int = 2,
                 channels_last: bool = False, weights: torch.Tensor | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 drop_single: bool = True) -> InMemoryBatches | StreamingBatches:
    """Batches of (X, y). `weights` (training only): oversample rows with these probabilities.
    `drop_single`: leave out a last training batch of one row (see the module's docstring).
    X: a tensor, or a lazy source with `.source(y)` (image files: modalities/image/files.py), which is
    always streamed, its batches passed through `transform` on the device."""
    row_values = int(np.prod(X.shape[1:])) if len(X) else 1
    if not isinstance(X, torch.Tensor):
        return StreamingBatches(X.source(y), batch_size, shuffle=shuffle, seed=seed, device=device,
                                workers=workers, weights=weights, transform=transform,
                                eval_workers=workers, row_values=row_values,
                                channels_last=channels_last, drop_single=drop_single)
    if loader == "stream":
        return StreamingBatches(TensorSource(X, y), batch_size, shuffle=shuffle, seed=seed,
                                device=device, workers=workers, weights=weights,
                                row_values=row_values, drop_single=drop_single)
    return InMemoryBatches(X, y, batch_size, shuffle=shuffle, seed=seed, device=device,
                           channels_last=channels_last, weights=weights, drop_single=drop_single)
