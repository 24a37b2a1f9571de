"""Align task: run ``hpc.align_job`` through a backend and launcher, then check every rank."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from hpc.align_job import rank_marker
from hpc.backend import JobFailedError, JobSpec, JobState, LocalBackend, tail, wait_for
from hpc.launchers import MpiexecLauncher
from tasks.task_options import IO_TASK, PERMANENT_ERRORS, retry_unless

BACKENDS = ("auto", "local")


def select_backend(name: str) -> LocalBackend:
    """``auto`` is local until the Slurm backend lands; unknown names list the choices."""
    if name not in BACKENDS:
        raise ValueError(f"backend {name!r} is not one of {', '.join(BACKENDS)}")
    return LocalBackend()


def read_markers(out_dir: Path, ranks: int) -> list[dict | None]:
    markers = []
    for r in range(ranks):
        path = rank_marker(out_dir, r)
        markers.append(json.loads(path.read_text()) if path.is_file() else None)
    return markers


def _clear_previous(out_dir: Path) -> None:
    for pattern in ("rank_*.tsv", "rank_*.done.json", "job.done.json", "job.out", "job.err"):
        for old in out_dir.glob(pattern):
            old.unlink()


# A job that ran and failed is not retried blindly; a failure to submit is.
@task(name="align", **{**IO_TASK, "retry_condition_fn": retry_unless(JobFailedError, *PERMANENT_ERRORS)})
def run_alignment(manifest: Path, ranks: int, backend: str = "auto", kernel: str = "cpu") -> Path:
    """Run the MPI alignment job on the staged manifest; return the folder of rank outputs."""
    logger = get_run_logger()
    out_dir = Path(manifest).parent / "align"
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(out_dir)
    threads = max(1, (os.cpu_count() or 1) // ranks)
    command = MpiexecLauncher(ranks).wrap(
        [sys.executable, "-m", "hpc.align_job", "--manifest", str(manifest), "--out-dir", str(out_dir),
         "--kernel", kernel]
    )
    spec = JobSpec(name=f"helixflow-align-{Path(manifest).parent.name}", command=command,
                   workdir=Path(manifest).parent, stdout=out_dir / "job.out", stderr=out_dir / "job.err",
                   env={"NUMBA_NUM_THREADS": str(threads)})
    runner = select_backend(backend)
    submitted = time.time()
    handle = runner.submit(spec)
    logger.info("submitted %s as %s: %s", spec.name, handle.job_id, " ".join(command))
    timeline: list[tuple[float, JobState]] = []
    state = wait_for(runner, handle, timeline=timeline)
    steps = "\n".join(f"| {datetime.fromtimestamp(t, timezone.utc):%H:%M:%S.%f} | {s.name} |"
                      for t, s in [(submitted, JobState.PENDING), *timeline])
    create_markdown_artifact(
        key="align-submit",
        markdown=f"### Alignment job {handle.job_id}\n\n- backend: {backend} (local mpiexec), {ranks} ranks, "
                 f"kernel {kernel}\n- command: `{shlex.join(command)}`\n\n| time (UTC) | state |\n|---|---|\n{steps}\n",
        description="Job submission and state timeline",
    )
    markers = read_markers(out_dir, ranks)
    failed = [m for m in markers if m is not None and m["exit_status"] != 0]
    missing = [r for r, m in enumerate(markers) if m is None]
    if state is not JobState.COMPLETED or failed or missing:
        detail = "; ".join(f"rank {m['rank']}: {m.get('error')}" for m in failed) or (
            f"ranks without a completion marker: {missing}" if missing else "no rank reported an error")
        stderr = tail(spec.stderr)
        create_markdown_artifact(
            key="align-failure",
            markdown=f"### Alignment job failed: {state.name}\n\n{detail}\n\n```\n{stderr}\n```\n",
        )
        raise JobFailedError(spec.name, state if state is not JobState.COMPLETED else JobState.FAILED,
                             f"{detail}\n--- stderr tail ---\n{stderr}")
    create_table_artifact(
        key="kernel-ranks",
        table=[{"rank": m["rank"], "host": m["host"], "kernel": m["kernel"], "reads": f"{m['reads'][0]}-{m['reads'][1]}",
                "pairs": m["pairs"], "cells": m["cells"], "seconds": round(m["seconds"], 3),
                "gcups": round(m["gcups"], 4)} for m in markers],
        description=f"Smith-Waterman kernel per MPI rank (job {handle.job_id})",
    )
    logger.info("alignment job %s completed on %d ranks", handle.job_id, ranks)
    return out_dir
