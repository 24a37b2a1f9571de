"""Slurm backend: sbatch script rendering, scheduler-output parsing, submit/status/cancel.

Rendering and parsing are pure functions tested on captured text; every scheduler command
goes through one runner (``run_command`` by default), so a fake replaces it in unit tests
while the integration tests use a real slurmctld + slurmd.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from hpc.backend import JobHandle, JobSpec, JobState, SubmissionError, SubmissionRejected, run_command

# Every Slurm job state, and ours. A literal table on purpose: no state falls through.
SLURM_STATES: dict[str, JobState] = {
    "PENDING": JobState.PENDING,
    "CONFIGURING": JobState.PENDING,
    "REQUEUED": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING,
    "REQUEUE_HOLD": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "SUSPENDED": JobState.RUNNING,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "BOOT_FAIL": JobState.NODE_FAIL,
    "NODE_FAIL": JobState.NODE_FAIL,
    "CANCELLED": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,
    "TIMEOUT": JobState.TIMEOUT,
    "DEADLINE": JobState.TIMEOUT,
    "PREEMPTED": JobState.PREEMPTED,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
    "SPECIAL_EXIT": JobState.FAILED,
}

TRANSIENT_SUBMIT_ERRORS = ("Socket timed out", "Resource temporarily unavailable",
                           "Unable to contact slurm controller", "Zero Bytes were transmitted")

_DIRECTIVES = {  # render_sbatch keyword -> sbatch option
    "job_name": "--job-name", "partition": "--partition", "nodes": "--nodes", "ntasks": "--ntasks",
    "cpus_per_task": "--cpus-per-task", "mem": "--mem", "time": "--time", "output": "--output",
    "error": "--error", "account": "--account", "array": "--array", "chdir": "--chdir",
}
VALID_OPTIONS = (*_DIRECTIVES, "extra_directives", "env", "command")


# What the job gets from the submitting environment; nothing else (sbatch exports everything by
# default, credentials included). The job's own variables are exported by the script itself.
JOB_ENVIRONMENT = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "NUMBA_CACHE_DIR",
                   "NUMBA_BOUNDSCHECK", "HELIXFLOW_FILE_MODE", "HELIXFLOW_FAIL_RANK", "HELIXFLOW_KILL_RANK",
                   "HELIXFLOW_RANK_SLEEP")


def _one_line(option: str, value: str) -> str:
    """sbatch reads directives line by line: a newline in a value would start a directive of its own."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"sbatch option {option!r}: {value!r} contains a control character; expected one line "
                         "of printable text")
    return value


def render_sbatch(**options) -> str:
    """A batch script from keyword options; unknown options are refused with the valid list.

    ``command`` (list of words) is required; ``env`` maps names to values to export;
    ``extra_directives`` is a list of raw ``--option=value`` strings. Every value is
    shell-quoted.
    """
    unknown = sorted(set(options) - set(VALID_OPTIONS))
    if unknown:
        raise TypeError(f"unknown sbatch option(s) {unknown}; valid options: {', '.join(VALID_OPTIONS)}")
    if not options.get("command"):
        raise TypeError("render_sbatch needs command=[...] (the launcher command)")
    lines = ["#!/bin/bash"]
    for key, flag in _DIRECTIVES.items():
        value = options.get(key)
        if value is not None:
            lines.append(f"#SBATCH {flag}={shlex.quote(_one_line(key, str(value)))}")
    for directive in options.get("extra_directives") or []:
        if not str(directive).startswith("--"):
            raise ValueError(f"extra directive {directive!r} must start with '--'")
        lines.append(f"#SBATCH {shlex.quote(_one_line('extra_directives', str(directive)))}")
    lines.append("set -euo pipefail")
    for name, value in sorted((options.get("env") or {}).items()):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"environment variable name {name!r} is not valid")
        lines.append(f"export {name}={shlex.quote(str(value))}")
    lines.append(shlex.join(str(word) for word in options["command"]))
    return "\n".join(lines) + "\n"


def parse_sbatch_parsable(stdout: str) -> str:
    """Job id from ``sbatch --parsable`` output (``123`` or ``123;cluster``)."""
    text = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job_id = text.split(";")[0]
    if not job_id.isdigit():
        raise SubmissionError(f"sbatch --parsable printed {stdout!r}, expected a job id")
    return job_id


def parse_scontrol_job(text: str) -> dict[str, str]:
    """Fields of ``scontrol show job -o ID`` (one line of Key=Value pairs)."""
    fields = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields


def parse_sacct_state(text: str) -> str | None:
    """First state of ``sacct -X -n -P -o State -j ID`` (``CANCELLED by 0`` -> CANCELLED)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip().split()[0].rstrip("+")
    return None


# Pending reasons that no amount of waiting clears: the job asks for more than the partition,
# its limits or its account allow, or for nodes that are not there.
NEVER_STARTS = ("PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "BadConstraints",
                "InvalidQOS", "InvalidAccount", "QOSMaxCpuPerJobLimit", "QOSMaxNodePerJobLimit",
                "AssocMaxCpuPerJobLimit", "AssocMaxNodePerJobLimit")
# Nodes down or drained: final unless they come back, as a node does after the NODE_FAIL we
# resubmit on. Such a job is given ``node_grace`` seconds before it is called unschedulable.
NODES_GONE = ("ReqNodeNotAvail",)


def pending_state(fields: dict[str, str]) -> tuple[JobState, str]:
    """(state, reason) of one ``scontrol show job`` record: a pending job whose Reason is in
    :data:`NEVER_STARTS` is UNSCHEDULABLE."""
    state = slurm_state(fields.get("JobState", "UNKNOWN"))
    reason = fields.get("Reason", "") if state is JobState.PENDING else ""
    if reason in ("None", "(null)"):
        reason = ""
    if reason.startswith(NEVER_STARTS):
        return JobState.UNSCHEDULABLE, f"Reason={reason}: Slurm will never start it as asked"
    return state, f"Reason={reason}" if reason else ""


def slurm_state(name: str) -> JobState:
    return SLURM_STATES.get(name.split()[0].rstrip("+"), JobState.UNKNOWN)


def combined_state(names: list[str]) -> JobState:
    """One state for a job array (one line per task): running while any task is, COMPLETED
    when all are, else the first task's way of ending badly."""
    states = [slurm_state(n) for n in names]
    for waiting in (JobState.RUNNING, JobState.PENDING, JobState.UNKNOWN):
        if waiting in states:
            return waiting
    bad = [s for s in states if s is not JobState.COMPLETED]
    return bad[0] if bad else JobState.COMPLETED


class SlurmBackend:
    """submit with ``sbatch --parsable``, status from scontrol (or sacct), cancel with scancel."""

    poll_seconds = 1.0  # each look is a call to the controller

    def __init__(self, runner: Callable[..., tuple[int, str, str]] = run_command,
                 submit_attempts: int = 4, backoff_seconds: float = 1.0, node_grace: float = 180.0,
                 **sbatch_options) -> None:
        self.run = runner
        self.node_grace = node_grace
        self._nodes_gone_since: dict[str, float] = {}
        self.submit_attempts = submit_attempts
        self.backoff_seconds = backoff_seconds
        self.sbatch_options = sbatch_options

    def script_for(self, job: JobSpec) -> str:
        # --no-requeue: after NODE_FAIL or preemption we resubmit ourselves (a set number of
        # times, with a fresh completion marker) rather than Slurm requeueing behind our back.
        options = {"job_name": job.name, "output": str(job.stdout), "error": str(job.stderr),
                   "chdir": str(job.workdir),
                   "extra_directives": ["--no-requeue", f"--export={','.join(JOB_ENVIRONMENT)}"],
                   **self.sbatch_options, **job.resources, "env": job.env, "command": job.command}
        return render_sbatch(**options)

    def submit(self, job: JobSpec) -> JobHandle:
        job.stdout.parent.mkdir(parents=True, exist_ok=True)
        script = Path(job.stdout).parent / f"{job.name}.sbatch"
        script.write_text(self.script_for(job))
        for attempt in range(1, self.submit_attempts + 1):
            rc, out, err = self.run(["sbatch", "--parsable", str(script)])
            if rc == 0:
                return JobHandle(job_id=parse_sbatch_parsable(out), spec=job, script=script)
            transient = any(t in err for t in TRANSIENT_SUBMIT_ERRORS)
            if not transient:
                raise SubmissionRejected(f"sbatch refused job {job.name!r} (rc {rc}): {err.strip()}")
            if attempt == self.submit_attempts:
                raise SubmissionError(f"sbatch failed {attempt} times for job {job.name!r}: {err.strip()}")
            time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def status(self, handle: JobHandle) -> JobState:
        rc, out, err = self.run(["scontrol", "show", "job", "-o", handle.job_id])
        if rc == 0 and out.strip():
            records = [parse_scontrol_job(line) for line in out.splitlines() if line.strip()]
            first, handle.reason = pending_state(records[0])
            if first is JobState.UNSCHEDULABLE:
                return first
            if handle.reason.startswith(tuple(f"Reason={r}" for r in NODES_GONE)):
                since = self._nodes_gone_since.setdefault(handle.job_id, time.monotonic())
                if time.monotonic() - since > self.node_grace:
                    handle.reason = f"{handle.reason} for over {self.node_grace:g} s: its nodes are gone"
                    return JobState.UNSCHEDULABLE
            else:
                self._nodes_gone_since.pop(handle.job_id, None)
            return combined_state([r.get("JobState", "UNKNOWN") for r in records])
        rc, out, _ = self.run(["sacct", "-X", "-n", "-P", "-o", "State", "-j", handle.job_id])
        state = parse_sacct_state(out) if rc == 0 else None
        return slurm_state(state) if state else JobState.UNKNOWN

    def cancel(self, handle: JobHandle) -> None:
        self.run(["scancel", handle.job_id])

    def available(self) -> bool:
        try:
            rc, out, _ = self.run(["sinfo", "-h", "-o", "%T"], timeout=10)
        except (OSError, subprocess.TimeoutExpired):  # no sinfo, or no controller answering
            return False
        return rc == 0 and bool(out.strip())
