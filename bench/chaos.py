"""Fault suite: ``python -m bench chaos`` (``make chaos``).

Each row injects one fault into a real run of the CLI (``python -m flows.pipeline``, local
Ray, local ``mpiexec``; Slurm rows when a controller answers; the disk-full row when this
process may mount a tmpfs), then runs the same command again without the fault, as a user
would, and compares the outputs with a clean run's. A row passes when the recovered run
holds every input read, byte for byte as the clean run; the faulty run's exit code and last
line say what happened. Bad input rows must be refused, naming file and line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.faults import Case, core_rows, disk_full_row, last_line, s3_row, slurm_rows
from tasks.simulate import write_simulated

BAD_INPUT = {
    "duplicate read names": "@r1\nACGTACGTAC\n+\nIIIIIIIIII\n@r2\nACGTAC\n+\nIIIIII\n@r1\nGGGTACGTAC\n+\nIIIIIIIIII\n",
    "short quality line": "@r1\nACGTACGTAC\n+\nIIIIIIIIII\n@r2\nACGTAC\n+\nIIIII\n",
}

TESTED_ELSEWHERE = [
    ("out-of-bounds access in a kernel", "tests/test_kernels_bounds.py (NUMBA_BOUNDSCHECK=1)"),
    ("S3 bodies cut off, object changed mid-read", "tests/test_s3_transfer.py, tests/test_s3.py"),
]


def outcome(case: Case, name: str) -> tuple[int | None, str]:
    """(reads in the summary, PAF sha256) of a finished run, or (None, '')."""
    out = case.work / name / "out"
    if not (out / "reads.summary.json").is_file():
        return None, ""
    return (json.loads((out / "reads.summary.json").read_text())["reads"],
            hashlib.sha256((out / "reads.paf").read_bytes()).hexdigest())


def staged_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--work", type=Path, default=Path(".helixflow/chaos"))
    parser.add_argument("--only", default="", help="run only the rows whose name contains this text")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    ref, reads = write_simulated(work / "data", contigs=4, contig_length=250_000, reads=args.reads,
                                 repeat_fraction=0.05, n_runs=5, seed=23)
    case = Case(work, ref, reads)
    code, line = case.run("clean")
    clean_reads, clean_paf = outcome(case, "clean")
    if code != 0:
        print(f"the clean run failed: {line}")
        return 1
    slurm = shutil.which("sinfo") is not None and subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0
    print(f"data: {args.reads:,} reads; clean run: {clean_reads:,} reads, PAF {clean_paf[:16]}")
    mounts: list[Path] = []
    rows = core_rows(case)
    if os.geteuid() == 0:
        rows.append(disk_full_row(case, staged_bytes(work / "clean" / "fsx"), mounts))
    else:
        print("disk full: skipped (mounting a small tmpfs needs root)")
    s3, stop_s3 = s3_row(case, work)
    rows.append(s3)
    rows += slurm_rows(case) if slurm else []
    print("fault | faulty run: exit, last line | reads in | reads out after rerun | identical to clean", flush=True)
    bad = 0
    try:
        for row in [r for r in rows if args.only in r.fault]:
            name = row.fault.replace(" ", "-").replace(",", "").replace("(", "").replace(")", "")
            code, line = row.inject(name)
            again, again_line = case.run(name, row.rerun_env, **row.rerun)  # the user's rerun, the fault gone
            out_reads, paf = outcome(case, name)
            same = again == 0 and out_reads == clean_reads and paf == clean_paf
            bad += not same
            print(f"{row.fault} | {code}, {line[:200]} | {clean_reads:,} | "
                  f"{out_reads if out_reads is None else f'{out_reads:,}'} | "
                  f"{'yes' if same else 'NO: ' + again_line[:120]}", flush=True)
    finally:
        stop_s3()
        for mount in mounts:
            subprocess.run(["umount", "-l", str(mount)])
    for fault, text in BAD_INPUT.items():
        if args.only not in fault:
            continue
        name = fault.replace(" ", "-")
        path = work / name / "bad.fq"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        log = work / name / "log.txt"
        with open(log, "wb") as out:
            done = subprocess.run(case.args(name, reads=str(path)), stdout=out, stderr=subprocess.STDOUT, timeout=600)
        written = (work / name / "out" / "reads.summary.json").exists()
        print(f"{fault} | {done.returncode}, {last_line(log)[:200]} | 3 | "
              f"{'a summary was written' if written else 'nothing written'} | n/a (bad input is refused)", flush=True)
        bad += done.returncode == 0 or written
    for fault, test in TESTED_ELSEWHERE:
        print(f"{fault} | see {test} | | |")
    print(f"chaos: {bad} row(s) lost or changed data" if bad else "chaos: nothing lost in any row")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
