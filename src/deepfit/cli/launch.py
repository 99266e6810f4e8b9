"""`deepfit train --nproc N`: the same command on N processes of this machine, through torchrun
(`python -m torch.distributed.run --standalone --nproc-per-node N -m deepfit train …`), and what
the command prints in each process (rank 0 alone; an error in any, said with its rank)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from deepfit.errors import SettingsError


def rank() -> int:
    """This process's rank under torchrun (0 without it)."""
    return int(os.environ.get("RANK", "0") or 0)


def under_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def rank_prefix() -> str:
    """"process 1 of 2: " in a job of several processes, else ""."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    return f"process {rank()} of {world}: " if under_torchrun() and world > 1 else ""


def torchrun_command(nproc: int, argv: Sequence[str]) -> list[str]:
    """The torchrun command line that runs `deepfit` with `argv` less its --nproc flag."""
    if nproc < 1:
        raise SettingsError(f"--nproc must be at least 1, not {nproc}")
    rest, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            rest.append(item)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(nproc), "-m", "deepfit", *rest]


def exec_torchrun(nproc: int, argv: Sequence[str]) -> None:
    """Replace this process by torchrun running the same command (never returns)."""
    command = torchrun_command(nproc, argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
