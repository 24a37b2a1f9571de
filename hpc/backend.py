"""Execution backends: ``submit(job) -> JobHandle``, ``status(handle) -> JobState``, ``cancel``.

All scheduler and process commands go through :func:`run_command`, so parsing is tested
without a cluster. The local backend runs the launcher's command as a child process.
"""

from __future__ import annotations

import enum
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol


class JobState(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    NODE_FAIL = "node_fail"
    PREEMPTED = "preempted"
    OUT_OF_MEMORY = "out_of_memory"
    UNSCHEDULABLE = "unschedulable"  # pending for a reason that will not pass, or too long: cancelled
    UNKNOWN = "unknown"

    @property
    def finished(self) -> bool:
        return self not in (JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN)


class SubmissionError(RuntimeError):
    """The backend could not start the job (may be transient: worth retrying later)."""


class SubmissionRejected(SubmissionError):
    """The scheduler said no (bad partition, invalid account): retrying will not help."""


class Terminated(BaseException):
    """SIGTERM arrived while waiting on a job (how Prefect stops a cancelled flow run)."""


class JobFailedError(RuntimeError):
    """The job ran and ended in a state other than COMPLETED."""

    def __init__(self, name: str, state: JobState, detail: str) -> None:
        self.name, self.state, self.detail = name, state, detail
        super().__init__(f"job {name!r} ended {state.name}: {detail}")


@dataclass(frozen=True)
class JobSpec:
    name: str
    command: list[str]  # already wrapped by a launcher
    workdir: Path
    stdout: Path
    stderr: Path
    env: dict[str, str] = field(default_factory=dict)
    resources: dict = field(default_factory=dict)  # scheduler options (ntasks, time, partition, ...)


@dataclass
class JobHandle:
    job_id: str
    spec: JobSpec
    process: subprocess.Popen | None = None
    script: Path | None = None  # the batch script, for schedulers that take one
    reason: str = ""  # why the scheduler has not started it yet, as the scheduler says


class Backend(Protocol):
    poll_seconds: float  # how often a waiter asks for the job's state

    def submit(self, job: JobSpec) -> JobHandle: ...
    def status(self, handle: JobHandle) -> JobState: ...
    def cancel(self, handle: JobHandle) -> None: ...


def run_command(args: list[str], timeout: float = 60.0, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run a command to completion: (return code, stdout, stderr)."""
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return proc.returncode, proc.stdout, proc.stderr


class LocalBackend:
    """Runs the job on this machine as a process group, so cancel stops every rank."""

    poll_seconds = 0.1  # a wait on our own child: asking costs nothing, waiting late costs the run

    def submit(self, job: JobSpec) -> JobHandle:
        job.stdout.parent.mkdir(parents=True, exist_ok=True)
        job.stderr.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(job.stdout, "wb") as out, open(job.stderr, "wb") as err:
                proc = subprocess.Popen(job.command, cwd=job.workdir, stdout=out, stderr=err,
                                        env={**os.environ, **job.env}, start_new_session=True)
        except OSError as exc:
            raise SubmissionError(f"job {job.name!r}: could not start {job.command[0]!r}: {exc}") from exc
        return JobHandle(job_id=f"local-{proc.pid}", spec=job, process=proc)

    def status(self, handle: JobHandle) -> JobState:
        rc = handle.process.poll()
        if rc is None:
            return JobState.RUNNING
        if rc == 0:
            return JobState.COMPLETED
        return JobState.CANCELLED if rc in (-signal.SIGTERM, -signal.SIGKILL) else JobState.FAILED

    def cancel(self, handle: JobHandle) -> None:
        if handle.process.poll() is None:
            os.killpg(handle.process.pid, signal.SIGTERM)
            try:
                handle.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(handle.process.pid, signal.SIGKILL)
                handle.process.wait()


def wait_for(backend: Backend, handle: JobHandle, poll_seconds: float = 0.5,
             timeout: float | None = None, timeline: list[tuple[float, JobState]] | None = None,
             done_marker: Path | None = None, unknown_grace: float = 60.0, pending_timeout: float | None = None,
             on_change: Callable[[JobState, str], None] | None = None) -> JobState:
    """Poll until the job finishes; cancel it if interrupted or past ``timeout``.

    Each change of state is appended to ``timeline`` as (unix time, state) when given, and
    each change of state or pending reason goes to ``on_change``. A job the scheduler no
    longer knows is judged by the job's own ``done_marker``: COMPLETED when it exists, FAILED
    when it is still missing after ``unknown_grace`` seconds. A job the scheduler says can
    never start (UNSCHEDULABLE), or still pending after ``pending_timeout`` seconds, is
    cancelled and ends UNSCHEDULABLE with ``handle.reason`` saying why.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    started = time.monotonic()
    unknown_since: float | None = None
    seen: tuple[JobState, str] | None = None
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        while True:
            state = backend.status(handle)
            if state is JobState.UNKNOWN:
                unknown_since = unknown_since or time.monotonic()
                if done_marker is not None and Path(done_marker).is_file():
                    state = JobState.COMPLETED
                elif time.monotonic() - unknown_since > unknown_grace:
                    state = JobState.FAILED
            else:
                unknown_since = None
            if (state is JobState.PENDING and pending_timeout is not None
                    and time.monotonic() - started > pending_timeout):
                handle.reason = f"still pending after {pending_timeout:g} s ({handle.reason or 'no reason given'})"
                state = JobState.UNSCHEDULABLE
            if timeline is not None and (not timeline or timeline[-1][1] is not state):
                timeline.append((time.time(), state))
            if on_change is not None and seen != (state, handle.reason):
                on_change(state, handle.reason)
            seen = (state, handle.reason)
            if state is JobState.UNSCHEDULABLE:
                backend.cancel(handle)  # it would wait in the queue forever
                return state
            if state.finished:
                return state
            if deadline is not None and time.monotonic() > deadline:
                backend.cancel(handle)
                return JobState.TIMEOUT
            time.sleep(poll_seconds)
    except BaseException:
        backend.cancel(handle)
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _raise_terminated(signum, frame):
    raise Terminated(f"signal {signum} while waiting on a job")


def tail(path: Path, lines: int = 30) -> str:
    if not Path(path).is_file():
        return ""
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
