"""Align task: run ``hpc.align_job`` through a backend and launcher, then check every rank."""

from __future__ import annotations

import json
import os
import shlex
import uuid
from datetime import datetime, timezone
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from hpc.align_job import job_command
from hpc.backend import JobFailedError, JobSpec, JobState, tail
from hpc.choices import JOB_MODES, Backend, JobMode, Kernel, Launcher, check_choice
from hpc.files import atomic_write_text
from hpc.launchers import killing_signal
from hpc.launchers import launcher as make_launcher
from hpc.manifest import StagedRun
from hpc.run_folder import (
    AlignOutputs,
    align_dir,
    clear_align_dir,
    job_errors,
    job_logs,
    job_marker,
    job_outputs,
    job_record,
)
from hpc.slurm import SlurmBackend
from hpc.submit import Attempt, cancel_recorded, run_to_completion, select_backend
from hpc.submit import job_record as record_job
from tasks.runtime.options import IO_TASK, PERMANENT_ERRORS, retry_unless


def read_markers(outputs: AlignOutputs) -> list[dict | None]:
    """Each rank's marker of this attempt (None where there is none)."""
    markers = []
    for r in range(outputs.ranks):
        path = outputs.marker(r)
        markers.append(json.loads(path.read_text()) if path.is_file() else None)
    return markers


def stop_leftover_job(out_dir: Path, logger) -> None:
    """A job recorded by an earlier attempt whose flow died (this flow owns the run folder now,
    so no live flow is waiting on it): stop it before its ranks can write again."""
    record = job_record(out_dir)
    if record.is_file():
        body = json.loads(record.read_text())
        logger.warning("stopping job %s left by an earlier attempt (%s): %s", body.get("job_id"),
                       body.get("backend"), cancel_recorded(body))
        record.unlink()


def _report(attempts: list[Attempt], backend: str, command: list[str], failure: str = "") -> str:
    parts = [f"### Alignment job ({backend}){': ' + failure if failure else ''}\n",
             f"- command: `{shlex.join(command)}`\n"]
    for n, attempt in enumerate(attempts, 1):
        rows = "\n".join(f"| {datetime.fromtimestamp(t, timezone.utc):%H:%M:%S} | {s.name} |"
                         for t, s in attempt.timeline)
        parts.append(f"\n#### attempt {n}: job {attempt.handle.job_id} ended {attempt.state.name}\n\n"
                     f"| time (UTC) | state |\n|---|---|\n{rows}\n")
        if attempt.handle.script is not None and attempt.handle.script.is_file():
            parts.append(f"\nsbatch script:\n\n```bash\n{attempt.handle.script.read_text()}```\n")
    return "".join(parts)


# A job that ran and failed is not retried blindly; a failure to submit is.
@task(name="align", **{**IO_TASK, "retry_condition_fn": retry_unless(JobFailedError, *PERMANENT_ERRORS)})
def run_alignment(staged: StagedRun, ranks: int, backend: Backend = "auto", kernel: Kernel = "cpu",
                  launcher: Launcher = "mpiexec", partition: str | None = None, time_limit: str = "01:00:00",
                  max_resubmits: int = 2, mode: JobMode = "mpi", pending_timeout: float | None = 3600) -> AlignOutputs:
    """Run the alignment job on the staged manifest; return the folder of rank outputs.

    ``mode="mpi"`` runs one MPI job of ``ranks`` ranks; ``mode="array"`` (Slurm only) runs a
    job array of ``ranks`` independent tasks, each aligning one cell-balanced share.
    """
    logger = get_run_logger()
    staged.verify()  # before anything is submitted
    manifest = staged.manifest
    out_dir = align_dir(Path(manifest).parent)
    out_dir.mkdir(parents=True, exist_ok=True)
    stop_leftover_job(out_dir, logger)
    clear_align_dir(out_dir)
    outputs = AlignOutputs(out_dir, uuid.uuid4().hex[:12], ranks)
    threads = max(1, (os.cpu_count() or 1) // ranks)
    runner = select_backend(backend, partition=partition)
    kind = "slurm" if isinstance(runner, SlurmBackend) else "local"
    check_choice("mode", mode, JOB_MODES)
    if mode == "array":
        if kind != "slurm":
            raise ValueError(f"mode 'array' needs the slurm backend; backend {backend!r} resolved to {kind}")
        command = job_command(manifest, out_dir, kernel, array=True, staged=staged, attempt=outputs.attempt)
        resources = {"array": f"0-{ranks - 1}", "ntasks": 1, "time": time_limit}
    else:
        command = make_launcher(launcher, ranks).wrap(job_command(manifest, out_dir, kernel, staged=staged,
                                                                  attempt=outputs.attempt))
        resources = {"ntasks": ranks, "time": time_limit} if kind == "slurm" else {}
    out_log, err_log = job_logs(out_dir, array=mode == "array")
    spec = JobSpec(name=f"helixflow-align-{Path(manifest).parent.name}", command=command,
                   workdir=Path(manifest).parent, stdout=out_log, stderr=err_log,
                   env={"NUMBA_NUM_THREADS": str(threads)}, resources=resources)
    def log_change(state: JobState, reason: str) -> None:
        logger.info("alignment job %s%s", state.name, f" ({reason})" if reason else "")

    attempts = run_to_completion(runner, spec, max_resubmits=max_resubmits,
                                 done_marker=job_marker(out_dir, outputs.attempt) if mode == "mpi" else None,
                                 pending_timeout=pending_timeout if kind == "slurm" else None, on_change=log_change,
                                 on_submit=lambda handle: atomic_write_text(
                                     job_record(out_dir), json.dumps(record_job(handle, kind, outputs.attempt))))
    job_record(out_dir).unlink(missing_ok=True)  # ended: nothing left for a later run to stop
    state = attempts[-1].state
    markers = read_markers(outputs)
    failed = [m for m in markers if m is not None and m["exit_status"] != 0]
    missing = [r for r, m in enumerate(markers) if m is None]
    if state is not JobState.COMPLETED or failed or missing:
        detail = "; ".join(f"rank {m['rank']}: {m.get('error')}" for m in failed) or (
            f"ranks without a completion marker: {missing}" if missing else "no rank reported an error")
        if state is JobState.UNSCHEDULABLE:
            detail = f"cancelled before it started: {attempts[-1].handle.reason}"
        tracebacks = "".join(f"--- rank {m['rank']} traceback ---\n{m['traceback']}" for m in failed[:2]
                             if m.get("traceback"))
        stderr = "\n".join(tail(err) for err in job_errors(out_dir))
        stdout = "\n".join(tail(out, 15) for out in job_outputs(out_dir))  # mpiexec reports a killed rank here
        if (killed := killing_signal(stdout + "\n" + stderr)) and not failed:
            detail = f"{detail}; a rank was killed by {killed}"
        create_markdown_artifact(key="align-failure", markdown=_report(attempts, kind, command, state.name)
                                 + f"\n{detail}\n\n" + (f"```\n{tracebacks}```\n\n" if tracebacks else "")
                                 + f"stderr tail:\n\n```\n{stderr}\n```\n"
                                 + f"\nstdout tail:\n\n```\n{stdout}\n```\n")
        raise JobFailedError(spec.name, state if state is not JobState.COMPLETED else JobState.FAILED,
                             f"{detail}\n{tracebacks}--- stderr tail ---\n{stderr}\n--- stdout tail ---\n{stdout}")
    create_markdown_artifact(key="align-submit", markdown=_report(attempts, kind, command),
                             description="Job submission, sbatch script and state timeline")
    create_table_artifact(
        key="kernel-ranks",
        table=[{"rank": m["rank"], "host": m["host"], "kernel": m["kernel"], "reads": f"{m['reads'][0]}-{m['reads'][1]}",
                "pairs": m["pairs"], "cells": m["cells"], "seconds": round(m["seconds"], 3),
                "gcups": round(m["gcups"], 4)} for m in markers],
        description=f"Smith-Waterman kernel per MPI rank (job {attempts[-1].handle.job_id})",
    )
    logger.info("alignment job %s (%s) completed on %d ranks", attempts[-1].handle.job_id, kind, ranks)
    return outputs
