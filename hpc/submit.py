"""Choose a backend, and run a job to the end through it, resubmitting after node failure or
preemption."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

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


def run_to_completion(backend: Backend, spec: JobSpec, *, max_resubmits: int = 2, poll_seconds: float = 1.0,
                      timeout: float | None = None, done_marker: Path | None = None,
                      pending_timeout: float | None = None,
                      on_change: Callable[[JobState, str], None] | None = None) -> list[Attempt]:
    """Submit, wait, and resubmit while the job ends NODE_FAIL or PREEMPTED (up to
    ``max_resubmits`` times). Returns every attempt; the last one's state is the outcome."""
    attempts: list[Attempt] = []
    while True:
        attempt = Attempt(handle=backend.submit(spec))
        attempts.append(attempt)
        attempt.state = wait_for(backend, attempt.handle, poll_seconds, timeout, attempt.timeline, done_marker,
                                 pending_timeout=pending_timeout, on_change=on_change)
        if attempt.state not in RESUBMIT_STATES or len(attempts) > max_resubmits:
            return attempts
