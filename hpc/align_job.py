"""MPI entry point: ``python -m hpc.align_job --manifest PATH [--out-dir DIR]``.

Every rank verifies the staged files it reads against the manifest, takes a contiguous
range of reads holding an equal share of DP cells, scores each read against its candidate
windows, traces back the best (and secondary loci), and writes its columns atomically plus a completion marker
with its exit status. Rank 0 checks every marker. A rank that fails writes its error to
its marker and aborts the whole job, so no rank waits forever.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import signal
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hpc.choices import KERNELS
from hpc.codec import BASE_MEMBERS, unpack_codes
from hpc.files import atomic_write_text
from hpc.genome import open_genome
from hpc.kernels.batch import (LOCUS_TOLERANCE, SECONDARY_RATIO, TRACE_BAND, band_cells, cigar_text, locus_spans,
                               score_floor, select_hits, window_bands)
from hpc.kernels.dispatch import score_batch
from hpc.mapq import mapq_array, scale_by_support
from hpc.pairs import pair_shard
from hpc.process import end_process, fixed_mmap_threshold, release_free_memory
from hpc.manifest import StagedRun, load_manifest, load_npz_verified, manifest_settings, verify_entry
from hpc.rank_output import COORDS, write_rank_output
from hpc.run_folder import align_dir, job_marker, rank_marker
from hpc.split import read_cells, share_of
from hpc.windows import Windows

TRACEBACK_CHARS = 4000  # the end of a failed rank's traceback, kept in its marker


def job_command(manifest: Path, out_dir: Path, kernel: str = "cpu", array: bool = False,
                staged: StagedRun | None = None, attempt: str = "0") -> list[str]:
    """The command line of this job, as a launcher wraps it (``array``: one Slurm array task;
    ``staged``: every rank checks the manifest is the one staged, with every read; ``attempt``:
    the token its output files carry)."""
    check = ["--manifest-sha256", staged.sha256, "--reads", str(staged.reads)] if staged else []
    return [sys.executable, "-m", "hpc.align_job", "--manifest", str(manifest), "--out-dir", str(out_dir),
            "--kernel", kernel, "--attempt", attempt, *check, *(["--array"] if array else [])]


def align_rank(manifest_path: Path, rank: int, size: int, kernel: str = "cpu", sha256: str | None = None,
               reads: int | None = None) -> tuple[list[tuple[int, dict[str, np.ndarray]]], dict]:
    """Columns (:data:`hpc.rank_output.COLUMNS`) of this rank's alignments, primary and secondary, per shard
    as ``(shard, columns)``, and its counters, all in memory (tests, tools). With ``sha256``
    and ``reads``, the manifest must be the one staged."""
    counters: dict = {}
    parts = list(rank_parts(manifest_path, rank, size, kernel, sha256, reads, counters))
    return parts, counters


def rank_parts(manifest_path: Path, rank: int, size: int, kernel: str = "cpu", sha256: str | None = None,
               reads: int | None = None, counters: dict | None = None) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """:func:`align_rank`'s ``(shard, columns)`` one shard at a time, so a rank holds one
    shard's candidates and rows, whatever the run's size; ``counters`` is filled at the end."""
    manifest = load_manifest(manifest_path, sha256=sha256, reads=reads)
    root = manifest_path.parent
    settings = manifest_settings(manifest)
    score_pairs = score_batch(kernel)
    genome = open_genome(verify_entry(root, manifest["reference"]).parent)  # mapped, not loaded

    # Which reads are ours: equal shares of DP cells, from each shard's total and the per-read
    # cells of the (at most two) shards where our cuts fall, whose candidates are then kept for
    # their turn below. The totals are in the manifest (the seed task counts them); a shard
    # seeded before they were has its candidates read for its total, one shard at a time.
    shards = manifest["shards"]
    sizes = [int(s["reads"]) for s in shards]
    held: dict[int, dict[str, np.ndarray]] = {}

    def candidates(i: int) -> dict[str, np.ndarray]:
        if i not in held:
            held[i] = load_npz_verified(root, shards[i]["candidates"])
        return held[i]

    totals = [int(s["candidates"]["cells"]) if "cells" in s["candidates"] else
              int(read_cells(load_npz_verified(root, s["candidates"]), sizes[i]).sum()) for i, s in enumerate(shards)]
    paired = any(int(s.get("mates", 1)) == 2 for s in shards)
    lo, hi = share_of(totals, sizes, lambda i: read_cells(candidates(i), sizes[i]), size, rank, 2 if paired else 1)
    shard_base = np.cumsum([0] + [s["reads"] for s in manifest["shards"]])

    pairs = cells_done = rescues = 0
    t0 = time.perf_counter()
    for shard_no, shard_entry in enumerate(manifest["shards"]):
        s_lo = max(lo - shard_base[shard_no], 0)
        s_hi = min(hi - shard_base[shard_no], shard_entry["reads"])
        if s_lo >= s_hi:
            continue
        c = held.pop(shard_no, None) or load_npz_verified(root, shard_entry["candidates"])
        mine = np.nonzero((c["read"] >= s_lo) & (c["read"] < s_hi))[0]
        if mine.shape[0] == 0:
            continue
        reads = load_npz_verified(root, shard_entry, BASE_MEMBERS)
        columns, n_pairs, cells, rescued = _align_shard(c, mine, reads, shard_no, int(shard_entry["reads"]), genome,
                                                        settings, score_pairs)
        # Only the rows outlive the shard: the next shard's arrays are not made beside this one's.
        del c, mine, reads
        release_free_memory()  # what the shard freed in the heap, under arrays that stay
        pairs += n_pairs
        cells_done += cells
        rescues += rescued
        yield shard_no, columns
        del columns  # written: not held through the next shard's peak
    seconds = time.perf_counter() - t0
    if counters is not None:
        counters.update({"reads": [int(lo), int(hi)], "pairs": pairs, "cells": cells_done, "mate_rescues": rescues,
                         "seconds": seconds, "gcups": cells_done / seconds / 1e9 if seconds > 0 else 0.0})


def _align_shard(c: dict[str, np.ndarray], mine: np.ndarray, reads: dict[str, np.ndarray], shard_no: int,
                 shard_reads: int, genome, settings, score_pairs) -> tuple[dict[str, np.ndarray], int, int, int]:
    """One shard's candidates ``mine`` (of the shard's candidate arrays ``c``) scored, traced
    back and paired: its columns, and how many pairs and DP cells it scored and mates it
    rescued. A function of its own, so that its working arrays go when it returns (held by
    the generator's frame across its ``yield``, they stood beside the next shard's)."""
    scoring = dataclasses.astuple(settings.scoring)
    max_secondary, min_score = settings.max_secondary, settings.min_score
    codes = unpack_codes(reads["packed"], reads["nmask"], int(reads["lengths"].sum()))
    read, strand, contig = c["read"][mine], c["strand"][mine], c["contig"][mine]
    wstart, wend = c["start"][mine], c["end"][mine]
    windows = Windows.of(codes, reads, genome, read, strand, contig, wstart, wend)  # bases gathered a block at a time
    band = window_bands(windows.q_len, wstart, wend, genome.lengths[contig])
    scores, q_ends, r_ends = windows.score(score_pairs, scoring, band)
    cells = band_cells(windows.q_len, windows.r_len, band)
    floor = score_floor(reads["lengths"][read], settings.scoring.match, min_score)
    pick, primary, second = select_hits(read, scores, contig, strand, *locus_spans(wstart, r_ends), SECONDARY_RATIO,
                                        max_secondary, floor=floor)
    mismatch_cost = settings.scoring.match - settings.scoring.mismatch
    # a read in a tandem array: its window's other diagonals are rivals too (bwa-mem's csub)
    shifted = windows.shifted(band, pick, q_ends, r_ends, settings.scoring.match, settings.scoring.mismatch,
                              LOCUS_TOLERANCE)
    second = np.maximum(second, shifted)
    mapq = mapq_array(scores[pick], second, mismatch_cost) * primary
    mapq = scale_by_support(mapq, c["votes"][mine][pick] if "votes" in c else None, settings.minimizer_window)
    proper = np.zeros(pick.shape[0], dtype=np.uint8)
    rescued = 0
    if int(reads.get("mates", 1)) == 2:
        tied = ((shifted > 0) & (shifted >= scores[pick])).astype(np.uint8)  # equal shifts in its own window
        found = pair_shard(windows, shard_reads, contig, wstart, wend, band, scores, q_ends, r_ends, pick,
                           primary, mapq, tied, scoring, score_pairs, max_secondary, min_score)
        windows, read, strand, contig, wstart, wend, band, scores, q_ends, r_ends, pick, primary, second, mapq, \
            proper, rescued = found
    coords, ops, lens, off = windows.trace(band, pick, scores, q_ends, r_ends, scoring, TRACE_BAND)
    n_cands = np.bincount(read, minlength=int(read.max()) + 1)[read[pick]]
    return {
        "shard": np.full(pick.shape[0], shard_no, dtype=np.int32), "read": read[pick],
        "strand": strand[pick], "contig": contig[pick], "wstart": wstart[pick],
        "primary": primary, "second": second, **dict(zip(COORDS, coords.astype(np.int32).T)),
        "cigar": cigar_text(ops, lens, off), "n_candidates": n_cands.astype(np.int32),
        "mapq": mapq.astype(np.uint8), "proper": proper,
    }, int(mine.shape[0]), int(cells), int(rescued)


def write_marker(out_dir: Path, rank: int, status: int, attempt: str = "0", **fields) -> None:
    body = {"rank": rank, "attempt": attempt, "exit_status": status, "host": socket.gethostname(),
            "pid": os.getpid(), **fields}
    atomic_write_text(rank_marker(out_dir, rank, attempt), json.dumps(body, indent=2))


def run_share(manifest: Path, out_dir: Path, rank: int, size: int, kernel: str, sha256: str | None = None,
              reads: int | None = None, attempt: str = "0") -> None:
    """Align this worker's share and write its rows and marker; a failure is marked, then raised."""
    try:
        if os.environ.get("HELIXFLOW_FAIL_RANK") == str(rank):  # fault injection for tests
            raise RuntimeError(f"rank {rank}: failure injected by HELIXFLOW_FAIL_RANK")
        if os.environ.get("HELIXFLOW_KILL_RANK") == str(rank):  # as the out-of-memory killer would
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(float(os.environ.get("HELIXFLOW_RANK_SLEEP", 0)))  # a slow job, for cancel tests
        fixed_mmap_threshold()  # a shard's arrays go back when freed, not into a heap that other arrays then pin
        counters: dict = {}
        path, rows = write_rank_output(out_dir, rank, rank_parts(manifest, rank, size, kernel, sha256, reads, counters),
                                       attempt)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        write_marker(out_dir, rank, 0, attempt, output=path.name, rows=rows, kernel=kernel,
                     cpu_s=usage.ru_utime + usage.ru_stime, max_rss_bytes=usage.ru_maxrss * 1024, **counters)
    except Exception as exc:  # the traceback goes in the marker too: MPI_Abort can drop a rank's unsent stderr
        write_marker(out_dir, rank, 1, attempt, error=f"{type(exc).__name__}: {exc}",
                     traceback=traceback.format_exc()[-TRACEBACK_CHARS:])
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpc.align_job", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, type=Path, help="staging manifest.json")
    parser.add_argument("--out-dir", type=Path, help="where rank outputs go (default: <staging>/align)")
    parser.add_argument("--kernel", choices=KERNELS, default="cpu", help="Smith-Waterman kernel (default cpu)")
    parser.add_argument("--attempt", default="0", help="token this attempt's output files carry")
    parser.add_argument("--manifest-sha256", help="refuse a manifest other than the one staged")
    parser.add_argument("--reads", type=int, help="refuse a manifest whose shards hold another number of reads")
    parser.add_argument("--array", action="store_true",
                        help="Slurm job-array mode: no MPI; this task's share is SLURM_ARRAY_TASK_ID "
                             "of SLURM_ARRAY_TASK_COUNT, and the submitter checks the markers")
    args = parser.parse_args(argv)
    out_dir = args.out_dir or align_dir(args.manifest.parent)
    out_dir.mkdir(parents=True, exist_ok=True)

    if args.array:
        rank = int(os.environ["SLURM_ARRAY_TASK_ID"])
        size = int(os.environ["SLURM_ARRAY_TASK_COUNT"])
        try:
            run_share(args.manifest, out_dir, rank, size, args.kernel, args.manifest_sha256, args.reads, args.attempt)
        except Exception:  # noqa: BLE001 - already in the marker; the task's exit status says the rest
            traceback.print_exc()
            return 1
        return 0

    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    try:
        run_share(args.manifest, out_dir, rank, size, args.kernel, args.manifest_sha256, args.reads, args.attempt)
    except Exception:  # noqa: BLE001 - in the marker; abort so no rank waits forever
        traceback.print_exc()
        sys.stderr.flush()
        comm.Abort(1)
        return 1
    statuses = comm.gather(0, root=0)
    if rank == 0:
        bad = [r for r in range(size) if not rank_marker(out_dir, r, args.attempt).is_file()]
        if bad or any(statuses):
            print(f"ranks without a completion marker: {bad}", file=sys.stderr)
            return 1
        atomic_write_text(job_marker(out_dir, args.attempt),
                          json.dumps({"ranks": size, "attempt": args.attempt, "exit_status": 0}))
    return 0


def finalize_mpi() -> None:
    """MPI_Finalize, when this process started MPI: mpi4py would call it at the very end of
    Python's exit, which :func:`~hpc.process.end_process` skips."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        mpi.Finalize()


if __name__ == "__main__":
    code = main()
    finalize_mpi()
    end_process(code)
