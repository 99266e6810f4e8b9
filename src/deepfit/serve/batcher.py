"""Requests batched as they arrive: a micro-batcher per model.

Each request's rows are encoded in the request's own handler (its errors are its own), then put
on an asyncio queue. One task per model takes the first waiting request, then gathers more for
up to `wait_ms` milliseconds or until `max_rows` rows, and runs ONE forward over all of them in
a worker thread (the event loop keeps accepting requests meanwhile); each request gets its slice
of the outputs. Under load a forward serves many requests; alone, a request waits `wait_ms` at
most. The idea of the dynamic batching of TensorFlow Serving and Triton, in a few lines.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import torch


class MicroBatcher:
    """Batched forwards of `model` (eval mode, no gradients) on CPU tensors [n, ...]."""

    def __init__(self, model: torch.nn.Module, max_rows: int = 256, wait_ms: float = 2.0) -> None:
        self.model, self.max_rows, self.wait = model, max_rows, wait_ms / 1000
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deepfit-forward")
        self.forwards = 0  # forward calls run, and the requests they served
        self.requests = 0

    async def outputs(self, features: torch.Tensor) -> torch.Tensor:
        """The model's outputs [n, K] for `features` [n, ...], batched with concurrent calls."""
        if self.task is None or self.task.done():  # started on first use, in the serving loop
            self.queue = asyncio.Queue()
            self.task = asyncio.get_running_loop().create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((features, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            rows = len(batch[0][0])
            deadline = time.perf_counter() + self.wait
            while rows < self.max_rows:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), left)
                except TimeoutError:
                    break
                batch.append(item)
                rows += len(item[0])
            try:
                out = await loop.run_in_executor(self.pool, self._forward, [b[0] for b in batch])
            except Exception as exc:  # a failed forward fails its requests, not the batcher
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for features, future in batch:
                if not future.done():
                    future.set_result(out[start : start + len(features)])
                start += len(features)

    @torch.no_grad()
    def _forward(self, parts: list[torch.Tensor]) -> torch.Tensor:
        self.forwards += 1
        self.requests += len(parts)
        return self.model(torch.cat(parts)).float()

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.pool.shutdown(wait=False)


__all__ = ["MicroBatcher"]
