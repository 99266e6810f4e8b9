"""SIGTERM and SIGINT, the same for both: during training (`stop_on_signals`), finish the
current step, checkpoint, stop; around the rest of a run (`interrupt_on_signals`, from before
the run directory is made), raise KeyboardInterrupt at once, so that the run directory's
cleanup runs (core/io.py's new_run_dir: removed while nothing is resumable, kept
once a complete checkpoint exists) instead of the process dying with a directory that neither
--resume nor the same command would take.

A second SIGINT while the first is being handled interrupts at once (the usual Ctrl-C twice).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt as SIGINT does, for the block (main thread only; the
    previous handlers come back after it)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    with _handling(interrupt):
        yield


@contextlib.contextmanager
def stop_on_signals(trainer: Any) -> Iterator[None]:
    def request_stop(signum: int, frame: Any) -> None:
        if trainer.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        trainer.stop_requested = True

    with _handling(request_stop):
        yield


@contextlib.contextmanager
def _handling(handler: Any) -> Iterator[None]:
    """`handler` for SIGTERM and SIGINT during the block, the previous ones back after it.
    Outside the main thread nothing is installed (Python allows handlers only there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
