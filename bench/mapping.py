"""Mapping benchmark: ``python -m bench mapping`` (``make bench-mapping``).

Simulates a genome with diverged repeats and N runs and reads from both strands, then
times the mapping stage (index + candidates + kernel under mpiexec + collect; no Prefect or
Ray start-up) and scores placement by paftools mapeval's rule. When ``minimap2`` is on the
PATH it runs ``minimap2 -x sr`` on the same files in the same run, side by side. Then the
real-genome sets (:mod:`bench.ecoli`): E. coli K-12 with dwgsim pairs, paired and
single-end, end to end beside ``minimap2 -ax sr``.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hpc.align_job import job_command
from hpc.backend import JobSpec, JobState, LocalBackend, tail, wait_for
from hpc.launchers import MpiexecLauncher
from hpc.manifest import RunSettings
from hpc.run_folder import AlignOutputs, align_dir, job_logs
from tasks.collect import SampleOutputs, write_results
from tasks.genomics.encoding import encode_sequences, to_codes
from tasks.genomics.fastx import read_fastx
from tasks.genomics.paf import Hit, evaluate
from tasks.genomics.seeding import ReferenceIndex, find_candidates
from tasks.simulate import write_simulated
from tasks.stage import write_staging


def accuracy_line(label: str, acc: dict, seconds: float) -> str:
    confident = [b for b in acc["by_mapq"] if int(b["mapq"].split("-")[0]) >= 10]
    reads = sum(b["reads"] for b in confident)
    correct = sum(b["correct"] for b in confident)
    share = f"{correct / reads:.4%} of {reads}" if reads else "n/a"
    return (f"{label:10s} correct {acc['fraction_correct']:.4%} of {acc['reads_with_truth']}   "
            f"MAPQ>=10: {share}   wall {seconds:.1f} s")


def run_ours(ref: Path, reads: Path, work: Path, ranks: int, shard_size: int) -> tuple[dict, dict[str, float]]:
    t = time.perf_counter()
    contigs = list(read_fastx(ref))
    index = ReferenceIndex.build([c.name for c in contigs], [to_codes(c.seq) for c in contigs], 15, 5)
    seconds = time.perf_counter() - t
    summary, times = map_reads(index, None, reads, work, ranks, shard_size)
    return summary, {"index": seconds, **times}


def map_reads(index: ReferenceIndex, genome_folder: Path | None, reads: Path, work: Path, ranks: int,
              shard_size: int, bam: bool = False) -> tuple[dict, dict[str, float]]:
    """Encode, seed, stage, align (mpiexec) and collect ``reads`` against ``index`` (PAF, and
    a sorted BAM when ``bam``); the summary and seconds per stage."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    records = list(read_fastx(reads))
    shards = [encode_sequences([r.name for r in records[i : i + shard_size]], [r.seq for r in records[i : i + shard_size]])
              for i in range(0, len(records), shard_size)]
    times["parse + encode"] = time.perf_counter() - t0
    t = time.perf_counter()
    cands = [find_candidates(index, s) for s in shards]
    times["candidates"] = time.perf_counter() - t
    t = time.perf_counter()
    manifest, _ = write_staging(work / "fsx", {}, index, shards, cands, RunSettings(), genome_folder)
    times["stage"] = time.perf_counter() - t
    t = time.perf_counter()
    out_dir = align_dir(manifest.parent)
    spec = JobSpec("bench-mapping", MpiexecLauncher(ranks).wrap(job_command(manifest, out_dir)), work,
                   *job_logs(out_dir), {"NUMBA_NUM_THREADS": "1"})
    backend = LocalBackend()
    if wait_for(backend, backend.submit(spec)) is not JobState.COMPLETED:
        raise RuntimeError(f"alignment job failed:\n{tail(spec.stderr)}")
    times["kernel (mpiexec)"] = time.perf_counter() - t
    t = time.perf_counter()
    summary = write_results(manifest, AlignOutputs(out_dir, "0", ranks), str(work / "out"),
                            spec=SampleOutputs("reads", bam=bam))
    times["collect"] = time.perf_counter() - t
    return summary, times


def run_minimap2(ref: Path, reads: Path, work: Path, names: list[str]) -> tuple[dict, float] | None:
    exe = shutil.which("minimap2")
    if exe is None:
        return None
    t = time.perf_counter()
    out = subprocess.run([exe, "-x", "sr", "-t", "2", "-c", str(ref), str(reads)], capture_output=True,
                         text=True, check=True).stdout
    seconds = time.perf_counter() - t
    (work / "minimap2.paf").write_text(out)
    hits = [Hit.from_paf_line(line) for line in out.splitlines() if "\ttp:A:P" in line]
    return evaluate(hits, names), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench mapping", description=__doc__.splitlines()[0])
    parser.add_argument("--genome", type=int, default=4_000_000, help="bases in the simulated genome")
    parser.add_argument("--contigs", type=int, default=4)
    parser.add_argument("--reads", type=int, default=200_000, help="reads of the simulated set (0: skip it)")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path(".helixflow/bench-mapping"))
    parser.add_argument("--ecoli-pairs", type=int, default=500_000,
                        help="dwgsim pairs on E. coli K-12 for the real-genome sets (0: skip them)")
    args = parser.parse_args(argv)
    args.work = args.work.resolve()  # the MPI job runs in another folder
    if args.reads:
        simulated_set(args)
    if args.ecoli_pairs:
        from bench.ecoli import main_ecoli

        main_ecoli(args.work / "ecoli", args.ecoli_pairs, args.ranks)
    return 0


def simulated_set(args) -> None:
    ref, reads = write_simulated(args.work, contigs=args.contigs, contig_length=args.genome // args.contigs,
                                 reads=args.reads, repeat_fraction=0.05, n_runs=20, seed=args.seed)
    print(f"data: {args.genome / 1e6:.1f} Mbp in {args.contigs} contigs (5% diverged repeats, N runs), "
          f"{args.reads} reads of 150 bp, 0.6% substitutions, 0.05% indels; files under {args.work}")
    summary, times = run_ours(ref, reads, args.work, args.ranks, args.shard_size)
    mapping = sum(v for k, v in times.items() if k != "parse + encode")
    for stage, seconds in times.items():
        print(f"  {stage:18s} {seconds:7.2f} s")
    print(f"  mapping stage (index + candidates + stage + kernel + collect): {mapping:.1f} s")
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(f"  peak RSS (this process or any rank): {rss / 1024:.0f} MiB")
    print(f"  mapped {summary['mapped']}, unmapped {summary['unmapped']}, secondary alignments {summary['secondary']}")
    print(accuracy_line("helixflow", summary["accuracy"], mapping))
    names = [r.name for r in read_fastx(reads)]
    other = run_minimap2(ref, reads, args.work, names)
    if other is None:
        print("minimap2    not installed (apt-get install minimap2) - no side-by-side run")
    else:
        print(accuracy_line("minimap2", *other))


if __name__ == "__main__":
    sys.exit(main())
