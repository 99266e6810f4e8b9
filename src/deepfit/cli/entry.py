"""The installed `deepfit` script (pyproject's [project.scripts]): the command, then a quick exit."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

from deepfit.cli.app import main


def console() -> NoReturn:
    """The installed `deepfit` script: `main()`, then a quick exit. Once the command is done,
    output is flushed and the atexit handlers run (logging, multiprocessing, tempfile), but the
    interpreter's teardown of every loaded module is skipped: with torch loaded it took 0.8 s of
    every command on the 2-core machine (benchmarks/RESULTS.md). A live non-daemon thread keeps
    the normal exit, which waits for it."""
    code = main()
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(t.is_alive() and not t.daemon for t in others):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
