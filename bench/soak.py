"""Soak: ``python -m bench soak`` (``make soak``).

The same data aligned several times from scratch, each run a fresh ``python -m flows.pipeline``
process with a fresh staging folder and Numba cache: every run must exit 0 and write the same
PAF and the same counts, byte for byte. A heap corruption or a race shows up here as a crash
or a difference in one run of several (it did: three clean runs in five once died in a rank).
Reads are simulated on a genome with diverged repeats, contig ends and N runs, in several
contigs, so reads overhang windows clipped at contig boundaries.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tasks.simulate import write_simulated


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_run(n: int, ref: Path, reads: Path, work: Path, ranks: int) -> dict:
    run = work / f"run{n}"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(run / "numba-cache")}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flows.pipeline", "--reads", str(reads), "--reference", str(ref),
                           "--output", str(run / "out"), "--staging-dir", str(run / "fsx"), "--ranks", str(ranks),
                           "--backend", "local", "--shard-size", "50000"],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    (work / f"run{n}.log").write_text(done.stdout + done.stderr)
    row = {"run": n, "exit": done.returncode, "wall_s": round(wall, 1), "paf_sha256": "", "reads": None,
           "mapped": None, "last_line": (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]}
    if done.returncode == 0:
        summary = json.loads((run / "out" / "reads.summary.json").read_text())
        row.update(paf_sha256=digest(run / "out" / "reads.paf")[:16], reads=summary["reads"],
                   mapped=summary["mapped"])
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2_000_000)
    parser.add_argument("--genome", type=int, default=4_000_000, help="bases, in 8 contigs")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path(".helixflow/soak"))
    args = parser.parse_args(argv)
    work = args.work.resolve()
    ref, reads = write_simulated(work / "data", contigs=8, contig_length=args.genome // 8, reads=args.reads,
                                 repeat_fraction=0.05, n_runs=20, seed=16)
    print(f"data: {args.reads:,} reads of 150 bp on a {args.genome / 1e6:g}-Mbp genome in 8 contigs "
          f"(5% diverged repeats, N runs); {args.runs} runs from scratch, {args.ranks} ranks each", flush=True)
    rows = []
    print("run | exit | wall_s | reads | mapped | paf_sha256", flush=True)
    for n in range(1, args.runs + 1):
        row = one_run(n, ref, reads, work, args.ranks)
        rows.append(row)
        print(f"{row['run']} | {row['exit']} | {row['wall_s']} | {row['reads']} | {row['mapped']} | "
              f"{row['paf_sha256'] or row['last_line'][0][:120]}", flush=True)
    same = all(r["exit"] == 0 for r in rows) and len({(r["paf_sha256"], r["reads"], r["mapped"]) for r in rows}) == 1
    print(f"soak: {sum(r['exit'] == 0 for r in rows)} of {len(rows)} runs exited 0; outputs "
          f"{'identical' if same else 'DIFFER'} byte for byte")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
