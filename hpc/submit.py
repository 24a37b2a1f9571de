"""Choose a backend, and run a job to the end through it, resubmitting after node failure or
preemption."""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from hpc.backend import Backend, JobHandle, JobSpec, JobState, LocalBackend, wait_for
from hpc.choices import BACKENDS, check_choice
from hpc.slurm import SlurmBackend

RESUBMIT_STATES = (JobState.NODE_FAIL, JobState.PREEMPTED)


def select_backend(name: str, **sbatch_options) -> Backend:
    """``auto`` picks Slurm when its controller answers ``sinfo``, else local mpiexec."""
    check_choice("backend", name, BACKENDS)
    if name == "local":
        return LocalBackend()
    slurm = SlurmBackend(**sbatch_options)
    if name == "slurm" or slurm.available():
        return slurm
    return LocalBackend()


@dataclass
class Attempt:
    handle: JobHandle
    state: JobState = JobState.PENDING
    timeline: list[tuple[float, JobState]] = field(default_factory=list)


def run_to_completion(backend: Backend, spec: JobSpec, *, max_resubmits: int = 2, poll_seconds: float | None = None,
                      timeout: float | None = None, done_marker: Path | None = None,
                      pending_timeout: float | None = None,
                      on_change: Callable[[JobState, str], None] | None = None,
                      on_submit: Callable[[JobHandle], None] | None = None) -> list[Attempt]:
    """Submit, wait, and resubmit while the job ends NODE_FAIL or PREEMPTED (up to
    ``max_resubmits`` times), asking every ``poll_seconds`` (default: the backend's own).
    Returns every attempt; the last one's state is the outcome."""
    if poll_seconds is None:
        poll_seconds = getattr(backend, "poll_seconds", 1.0)
    attempts: list[Attempt] = []
    while True:
        attempt = Attempt(handle=backend.submit(spec))
        attempts.append(attempt)
        if on_submit is not None:
            on_submit(attempt.handle)
        attempt.state = wait_for(backend, attempt.handle, poll_seconds, timeout, attempt.timeline, done_marker,
                                 pending_timeout=pending_timeout, on_change=on_change)
        if attempt.state not in RESUBMIT_STATES or len(attempts) > max_resubmits:
            return attempts


def job_record(handle: JobHandle, backend: str, attempt: str) -> dict:
    """What a later run needs to stop this job if the flow that submitted it dies: the
    scheduler's id, or the local process group and the host it runs on."""
    return {"backend": backend, "job_id": handle.job_id, "attempt": attempt, "host": socket.gethostname(),
            "pgid": handle.process.pid if handle.process is not None else None}


def cancel_recorded(record: dict, slurm: Backend | None = None) -> str:
    """Stop the job ``record`` names, left running by a flow that was killed; say what was done.
    A local process group is signalled only on its own host, and only while its leader still
    runs the align job (a reused pid is left alone)."""
    if record.get("backend") == "slurm":
        (slurm or SlurmBackend()).cancel(JobHandle(job_id=str(record["job_id"]), spec=None))  # type: ignore[arg-type]
        return f"scancel {record['job_id']}"
    pgid = record.get("pgid")
    if not pgid or record.get("host") != socket.gethostname():
        return "nothing to stop here"
    try:
        cmdline = Path(f"/proc/{pgid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "already gone"
    if b"hpc.align_job" not in cmdline:
        return "already gone (its pid now runs something else)"
    os.killpg(pgid, signal.SIGTERM)
    for _ in range(50):
        time.sleep(0.2)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return f"stopped process group {pgid}"
    os.killpg(pgid, signal.SIGKILL)
    return f"killed process group {pgid}"
