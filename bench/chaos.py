"""Fault suite: ``python -m bench chaos`` (``make chaos``).

Each row injects one fault into a real run of the CLI (``python -m flows.pipeline``, local
Ray, local ``mpiexec``; Slurm rows when a controller answers), then runs the same command
again without the fault, as a user would, and compares the outputs with a clean run's. A row
passes when the faulty run fails with a message that says what happened (or succeeds where
it should), and the recovered run holds every input read, byte for byte as the clean run.
Faults already tested in the suite at their own level (Ray's OOM killer, S3 503 storms and
bodies cut off, slurmd killed, a Slurm time limit, a full disk) are listed with their test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tasks.simulate import write_simulated


class Case:
    def __init__(self, work: Path, ref: Path, reads: Path) -> None:
        self.work, self.ref, self.reads = work, ref, reads

    def args(self, name: str, reads: Path | None = None, **extra: str) -> list[str]:
        flags = {"reads": str(reads or self.reads), "reference": str(self.ref), "output": str(self.work / name / "out"),
                 "staging-dir": str(self.work / name / "fsx"), "backend": "local", "ranks": "2",
                 "shard-size": "2000", **extra}
        return [sys.executable, "-m", "flows.pipeline", *[w for k, v in flags.items() for w in (f"--{k}", v)]]

    def start(self, name: str, env: dict | None = None, **extra: str) -> subprocess.Popen:
        (self.work / name).mkdir(parents=True, exist_ok=True)
        log = open(self.work / name / "log.txt", "ab")
        return subprocess.Popen(self.args(name, **extra), env={**os.environ, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def run(self, name: str, env: dict | None = None, **extra: str) -> tuple[int, str]:
        proc = self.start(name, env, **extra)
        proc.wait(timeout=900)
        return proc.returncode, last_line(self.work / name / "log.txt")

    def outcome(self, name: str) -> tuple[int | None, str]:
        """(reads in the summary, PAF sha256) of a finished run, or (None, '')."""
        out = self.work / name / "out"
        if not (out / "summary.json").is_file():
            return None, ""
        return (json.loads((out / "summary.json").read_text())["reads"],
                hashlib.sha256((out / "alignments.paf").read_bytes()).hexdigest())


def last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def wait_for_path(proc: subprocess.Popen, base: Path, pattern: str, timeout: float = 300) -> bool:
    """Wait until a file matching ``pattern`` under ``base`` exists (False if the run ended first)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if base.is_dir() and any(base.glob(pattern)):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def kill_flow(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the flow and what shares its process group; not the MPI job
    proc.wait(timeout=60)


def faults(case: Case, slurm: bool) -> list[tuple[str, Callable[[str], tuple[int, str]]]]:
    """(name, inject) pairs; inject(name) runs the faulty attempt under ``<work>/<name>`` and
    returns its exit code and last line; the recovery run reuses that folder."""

    def killed_mid_encode(name):
        proc = case.start(name, {"HELIXFLOW_SHARD_SLEEP": "0.5"})
        wait_for_path(proc, case.work / name / "fsx", "run-*/reads/*.done.json")
        kill_flow(proc)
        return proc.returncode, "SIGKILL to the flow while it encoded"

    def killed_mid_align(name):
        proc = case.start(name, {"HELIXFLOW_RANK_SLEEP": "20"})
        wait_for_path(proc, case.work / name / "fsx", "run-*/align/job.json")
        kill_flow(proc)
        return proc.returncode, "SIGKILL to the flow while its ranks ran (left running)"

    def tampered_manifest(name):
        proc = case.start(name, {"HELIXFLOW_RANK_SLEEP": "8"})
        wait_for_path(proc, case.work / name / "fsx", "run-*/align/job.json")
        manifest = next((case.work / name / "fsx").glob("run-*/manifest.json"))
        body = json.loads(manifest.read_text())
        body["shards"].pop()
        manifest.write_text(json.dumps(body, indent=2))
        proc.wait(timeout=600)
        return proc.returncode, last_line(case.work / name / "log.txt")

    def same_key_runs(name):
        first = case.start(name, {"HELIXFLOW_RANK_SLEEP": "15"})
        wait_for_path(first, case.work / name / "fsx", "run-*/align/job.json")
        second = case.run(name)  # same inputs, settings and staging folder, while the first aligns
        first.wait(timeout=600)
        return second[0], f"second run: {second[1]} | first run: exit {first.returncode}"

    rows = [
        ("SIGKILL mid-encode", killed_mid_encode),
        ("SIGKILL mid-align", killed_mid_align),
        ("rank crash", lambda name: case.run(name, {"HELIXFLOW_FAIL_RANK": "1"})),
        ("rank killed by a signal", lambda name: case.run(name, {"HELIXFLOW_KILL_RANK": "1"})),
        ("manifest edited after staging", tampered_manifest),
        ("two runs, one run folder", same_key_runs),
    ]
    if slurm:
        rows.append(("Slurm job that can never start", lambda name: case.run(name, backend="slurm", ranks="6")))
    return rows


BAD_INPUT = {
    "duplicate read names": "@r1\nACGTACGTAC\n+\nIIIIIIIIII\n@r2\nACGTAC\n+\nIIIIII\n@r1\nGGGTACGTAC\n+\nIIIIIIIIII\n",
    "short quality line": "@r1\nACGTACGTAC\n+\nIIIIIIIIII\n@r2\nACGTAC\n+\nIIIII\n",
}

TESTED_ELSEWHERE = [
    ("OOM-killed Ray task", "tests/test_ray_oom.py"),
    ("S3 503 storm, bodies cut off, object changed mid-read", "tests/test_s3_transfer.py, tests/test_s3.py"),
    ("slurmd killed (NODE_FAIL, resubmitted)", "tests/test_slurm_cluster.py"),
    ("Slurm time limit", "tests/test_slurm_cluster.py"),
    ("disk full on the staging folder", "tests/test_resume.py"),
    ("out-of-bounds access in a kernel", "tests/test_kernels_bounds.py (NUMBA_BOUNDSCHECK=1)"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--work", type=Path, default=Path(".helixflow/chaos"))
    args = parser.parse_args(argv)
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    ref, reads = write_simulated(work / "data", contigs=4, contig_length=250_000, reads=args.reads,
                                 repeat_fraction=0.05, n_runs=5, seed=23)
    case = Case(work, ref, reads)
    code, line = case.run("clean")
    clean_reads, clean_paf = case.outcome("clean")
    if code != 0:
        print(f"the clean run failed: {line}")
        return 1
    slurm = shutil.which("sinfo") is not None and subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0
    print(f"data: {args.reads:,} reads; clean run: {clean_reads:,} reads, PAF {clean_paf[:16]}")
    print("fault | faulty run: exit, last line | reads in | reads out after rerun | identical to clean")
    bad = 0
    for fault, inject in faults(case, slurm):
        name = fault.replace(" ", "-").replace(",", "")
        code, line = inject(name)
        again, again_line = case.run(name)  # the user's rerun, the fault gone
        out_reads, paf = case.outcome(name)
        same = again == 0 and out_reads == clean_reads and paf == clean_paf
        bad += not same
        print(f"{fault} | {code}, {line[:160]} | {clean_reads:,} | {out_reads if out_reads is None else f'{out_reads:,}'}"
              f" | {'yes' if same else 'NO: ' + again_line[:120]}", flush=True)
    for fault, text in BAD_INPUT.items():
        name = fault.replace(" ", "-")
        path = write_bad(work / name / "bad.fq", text)
        code, line = run_bad(case, name, path)
        print(f"{fault} | {code}, {line[:160]} | 3 | nothing written | n/a (bad input is refused)", flush=True)
        bad += code == 0
    for fault, test in TESTED_ELSEWHERE:
        print(f"{fault} | see {test} | | |")
    print(f"chaos: {bad} row(s) lost or changed data" if bad else "chaos: nothing lost in any row")
    return 1 if bad else 0


def write_bad(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def run_bad(case: Case, name: str, path: Path) -> tuple[int, str]:
    log = case.work / name / "log.txt"
    with open(log, "wb") as out:
        done = subprocess.run(case.args(name, reads=path), stdout=out, stderr=subprocess.STDOUT, timeout=600)
    return done.returncode, last_line(log)


if __name__ == "__main__":
    sys.exit(main())
