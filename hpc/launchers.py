"""Launchers wrap a command for a parallel runtime; chosen apart from the backend."""

from __future__ import annotations

import re
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from hpc.choices import LAUNCHERS, check_choice


def killing_signal(text: str) -> str | None:
    """The signal that killed a rank, as the launcher reported it: mpiexec's "Killed (signal 9)"
    or "EXIT CODE: 9"-style lines, srun's "Killed" / "task 1: Killed", bash's "Killed"."""
    found = re.search(r"\(signal (\d+)\)", text) or re.search(r"terminated with signal (\d+)", text, re.I)
    if found:
        number = int(found.group(1))
        try:
            return f"{signal.Signals(number).name} (signal {number})"
        except ValueError:
            return f"signal {number}"
    if re.search(r"(^|\s)(Killed|oom-kill|OOM Killed|Out Of Memory)\b", text, re.M):
        return "SIGKILL ('Killed': the kernel's out-of-memory killer, or kill -9)"
    return None


def find_mpiexec() -> str:
    """The mpiexec beside this Python (the mpich wheel's), else the first on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise FileNotFoundError(
            "mpiexec not found beside the Python interpreter or on PATH; install the 'mpich' wheel"
        )
    return found


@dataclass(frozen=True)
class MpiexecLauncher:
    ranks: int

    def wrap(self, command: list[str]) -> list[str]:
        if self.ranks < 1:
            raise ValueError(f"ranks must be >= 1, got {self.ranks}")
        return [find_mpiexec(), "-n", str(self.ranks), *command]


@dataclass(frozen=True)
class SrunLauncher:
    ranks: int

    def wrap(self, command: list[str]) -> list[str]:
        return ["srun", f"--ntasks={self.ranks}", "--mpi=pmi2", *command]


def launcher(name: str, ranks: int) -> MpiexecLauncher | SrunLauncher:
    """The launcher called ``name`` (one of :data:`hpc.choices.LAUNCHERS`) for ``ranks`` ranks."""
    check_choice("launcher", name, LAUNCHERS)
    return {"mpiexec": MpiexecLauncher, "srun": SrunLauncher}[name](ranks)
