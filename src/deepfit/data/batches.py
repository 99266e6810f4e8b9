"""Batches for the trainer.

`InMemoryBatches` is the fast path: the tensors live on the training device once, and an epoch
is a shuffled index sliced into batches (no per-sample `__getitem__`, no collate, no copy).

The order of epoch `e` depends only on (seed, e), so the data-order position of a run is just
(epoch, batch index): resume needs no generator state for it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

Batch = tuple[torch.Tensor, torch.Tensor]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The CPU generator that shuffles epoch `epoch` of a run seeded with `seed`."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63))


class InMemoryBatches:
    """Shuffled (or ordered) batches sliced from tensors held on one device."""

    def __init__(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        self.X = X.to(device)
        self.y = y.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        # A last batch of one sample breaks BatchNorm in training; that sample is left out of
        # the epoch (it is in other batches in other epochs, since the order is shuffled).
        n = len(X)
        self.n_used = n - 1 if shuffle and n % batch_size == 1 and n > 1 else n

    def __len__(self) -> int:
        return -(-self.n_used // self.batch_size)

    @property
    def n_samples(self) -> int:
        return len(self.X)

    def order(self, epoch: int) -> torch.Tensor:
        """The row order of an epoch, on the data's device."""
        if not self.shuffle:
            return torch.arange(len(self.X), device=self.X.device)
        perm = torch.randperm(len(self.X), generator=epoch_generator(self.seed, epoch))
        return perm.to(self.X.device)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The batches of one epoch, from batch index `start` (a resumed epoch skips the rest)."""
        if not self.shuffle:  # plain slices: no gather at all
            for i in range(start * self.batch_size, self.n_used, self.batch_size):
                yield self.X[i : i + self.batch_size], self.y[i : i + self.batch_size]
            return
        order = self.order(epoch)
        for i in range(start * self.batch_size, self.n_used, self.batch_size):
            idx = order[i : i + self.batch_size]
            yield self.X[idx], self.y[idx]
