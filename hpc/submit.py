"""Run a job to the end through any backend, resubmitting after node failure or preemption."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hpc.backend import Backend, JobHandle, JobSpec, JobState, wait_for

RESUBMIT_STATES = (JobState.NODE_FAIL, JobState.PREEMPTED)


@dataclass
class Attempt:
    handle: JobHandle
    state: JobState = JobState.PENDING
    timeline: list[tuple[float, JobState]] = field(default_factory=list)


def run_to_completion(backend: Backend, spec: JobSpec, *, max_resubmits: int = 2, poll_seconds: float = 1.0,
                      timeout: float | None = None, done_marker: Path | None = None) -> list[Attempt]:
    """Submit, wait, and resubmit while the job ends NODE_FAIL or PREEMPTED (up to
    ``max_resubmits`` times). Returns every attempt; the last one's state is the outcome."""
    attempts: list[Attempt] = []
    while True:
        attempt = Attempt(handle=backend.submit(spec))
        attempts.append(attempt)
        attempt.state = wait_for(backend, attempt.handle, poll_seconds, timeout, attempt.timeline, done_marker)
        if attempt.state not in RESUBMIT_STATES or len(attempts) > max_resubmits:
            return attempts
