"""Kernel benchmark: ``python -m bench kernel`` (``make bench-kernel``).

Prints GCUPS (billions of DP cells per second) for the scalar kernel, the vectorized kernel
on 1 and 2 threads, 1 and 2 MPI ranks, and parasail's ``sw_striped_16`` and
``sw_striped_profile_16`` on the same pairs in the same run, with the ratio to parasail;
then working memory per DP cell and the peak RSS of one process scoring 1M pairs.
Default workload: 20,000 pairs of a 150-bp read against a 250-bp window.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from hpc.split import split_by_cells
from hpc.kernels.scoring import Scoring
from hpc.launchers import MpiexecLauncher

SCORING = Scoring()
ARGS = (SCORING.match, SCORING.mismatch, SCORING.gap_open, SCORING.gap_extend)


def workload(pairs: int, read_len: int, window_len: int, seed: int):
    """Reads cut from their windows with 2% substitutions, as the mapper hands them over."""
    rng = np.random.default_rng(seed)
    windows = rng.integers(0, 4, (pairs, window_len), dtype=np.uint8)
    starts = rng.integers(0, window_len - read_len + 1, pairs)
    reads = windows[np.arange(pairs)[:, None], starts[:, None] + np.arange(read_len)]
    subs = rng.random(reads.shape) < 0.02
    reads[subs] = (reads[subs] + rng.integers(1, 4, int(subs.sum()), dtype=np.uint8)) % 4
    q_len = np.full(pairs, read_len, dtype=np.int64)
    r_len = np.full(pairs, window_len, dtype=np.int64)
    q_off = np.arange(pairs, dtype=np.int64) * read_len
    r_off = np.arange(pairs, dtype=np.int64) * window_len
    return reads.reshape(-1), q_off, q_len, windows.reshape(-1), r_off, r_len


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def numba_gcups(kernel: str, threads: int, data) -> float:
    import numba

    from hpc.kernels.dispatch import score_batch

    score = score_batch(kernel)
    qs, q_off, q_len, rs, r_off, r_len = data
    score(qs, q_off[:64], q_len[:64], rs, r_off[:64], r_len[:64], *ARGS)  # compile / warm up
    numba.set_num_threads(threads)
    seconds = timed(score, *data, *ARGS)
    return float((q_len * r_len).sum()) / seconds / 1e9


def parasail_gcups(data, profile: bool) -> float:
    import parasail

    qs, q_off, q_len, rs, r_off, r_len = data
    matrix = parasail.matrix_create("ACGTN", SCORING.match, SCORING.mismatch)
    text = np.frombuffer(b"ACGTN", dtype=np.uint8)
    reads = [text[qs[o : o + n]].tobytes().decode() for o, n in zip(q_off, q_len)]
    wins = [text[rs[o : o + n]].tobytes().decode() for o, n in zip(r_off, r_len)]
    go, ge = -SCORING.gap_open, -SCORING.gap_extend
    t0 = time.perf_counter()
    if profile:  # a profile per read, built inside the timing: each read here is new
        for q, r in zip(reads, wins):
            parasail.sw_striped_profile_16(parasail.profile_create_16(q, matrix), r, go, ge)
    else:
        for q, r in zip(reads, wins):
            parasail.sw_striped_16(q, r, go, ge, matrix)
    return float((q_len * r_len).sum()) / (time.perf_counter() - t0) / 1e9


def mpi_worker(args) -> None:
    """One rank: its share of the pairs by cells, timed between barriers."""
    import numba
    from mpi4py import MPI

    from hpc.kernels.dispatch import full_band
    from hpc.kernels.simd import sw_score_batch_simd

    comm = MPI.COMM_WORLD
    data = workload(args.pairs, args.read_len, args.window_len, args.seed)
    qs, q_off, q_len, rs, r_off, r_len = data
    lo, hi = split_by_cells(q_len * r_len, comm.Get_size())[comm.Get_rank()]
    numba.set_num_threads(1)
    sw_score_batch_simd(qs, q_off[:64], q_len[:64], rs, r_off[:64], r_len[:64], *full_band(q_len[:64], r_len[:64]),
                        *ARGS)
    comm.Barrier()
    t0 = time.perf_counter()
    sw_score_batch_simd(qs, q_off[lo:hi], q_len[lo:hi], rs, r_off[lo:hi], r_len[lo:hi],
                        *full_band(q_len[lo:hi], r_len[lo:hi]), *ARGS)
    seconds = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    if comm.Get_rank() == 0:
        print(json.dumps({"gcups": float((q_len * r_len).sum()) / seconds / 1e9}))


def mpi_gcups(ranks: int, args) -> float:
    command = MpiexecLauncher(ranks).wrap([
        sys.executable, "-m", "bench.kernel", "--mpi-worker", "--pairs", str(args.pairs),
        "--read-len", str(args.read_len), "--window-len", str(args.window_len), "--seed", str(args.seed)])
    out = subprocess.run(command, capture_output=True, text=True, check=True,
                         env={**os.environ, "NUMBA_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])["gcups"]


def rss_worker(args) -> None:
    """Score ``args.rss_pairs`` pairs in chunks of ``args.pairs``, as a rank streams shards."""
    from hpc.kernels.dispatch import full_band
    from hpc.kernels.simd import sw_score_batch_simd

    cells = 0
    t0 = time.perf_counter()
    for chunk in range(0, args.rss_pairs, args.pairs):
        n = min(args.pairs, args.rss_pairs - chunk)
        data = workload(n, args.read_len, args.window_len, args.seed + chunk)
        sw_score_batch_simd(*data, *full_band(data[2], data[5]), *ARGS)
        cells += int((data[2] * data[5]).sum())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"pairs": args.rss_pairs, "peak_rss_bytes": peak, "seconds": time.perf_counter() - t0,
                      "cells": cells}))


def working_bytes_per_cell(read_len: int, window_len: int) -> float:
    """Vectorized kernel's buffers per batch over the DP cells of one row of every lane."""
    from hpc.kernels.simd import LANES

    buffers = LANES * (read_len + window_len) + 3 * (window_len + 1) * LANES * 2 + 7 * LANES * 4
    return buffers / (window_len * LANES)


def measure(args) -> list[tuple[str, float]]:
    """(label, GCUPS) rows; the first is the parasail reference the others are compared to."""
    data = workload(args.pairs, args.read_len, args.window_len, args.seed)
    return [
        ("parasail sw_striped_16 (per pair from Python)", parasail_gcups(data, profile=False)),
        ("parasail sw_striped_profile_16 (profile per read)", parasail_gcups(data, profile=True)),
        ("scalar kernel, 1 thread", numba_gcups("scalar", 1, data)),
        ("vectorized kernel, 1 thread", numba_gcups("cpu", 1, data)),
        ("vectorized kernel, 2 threads", numba_gcups("cpu", 2, data)),
        ("vectorized kernel, 1 MPI rank", mpi_gcups(1, args)),
        ("vectorized kernel, 2 MPI ranks", mpi_gcups(2, args)),
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench kernel", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--read-len", type=int, default=150)
    parser.add_argument("--window-len", type=int, default=250)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rss-pairs", type=int, default=1_000_000, help="pairs for the peak-RSS run (0 skips)")
    parser.add_argument("--mpi-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rss-worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mpi_worker:
        mpi_worker(args)
        return 0
    if args.rss_worker:
        rss_worker(args)
        return 0

    print(f"workload: {args.pairs} pairs, {args.read_len}-bp reads x {args.window_len}-bp windows, "
          f"scoring {SCORING}; {os.cpu_count()} CPUs")
    rows = measure(args)
    reference = rows[0][1]
    print(f"{'kernel':52s} {'GCUPS':>8s} {'x parasail_16':>14s}")
    for name, gcups in rows:
        print(f"{name:52s} {gcups:8.3f} {gcups / reference:14.2f}")
    print(f"2 MPI ranks / 1 rank: {rows[6][1] / rows[5][1]:.2f}x")
    print(f"working memory per DP cell in flight (vectorized): "
          f"{working_bytes_per_cell(args.read_len, args.window_len):.1f} bytes")
    if args.rss_pairs:
        out = subprocess.run([sys.executable, "-m", "bench.kernel", "--rss-worker", "--rss-pairs", str(args.rss_pairs),
                              "--pairs", str(args.pairs), "--read-len", str(args.read_len),
                              "--window-len", str(args.window_len)], capture_output=True, text=True, check=True)
        rss = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"peak RSS of one process scoring {rss['pairs']} pairs: {rss['peak_rss_bytes'] / 2**20:.0f} MiB "
              f"({rss['seconds']:.1f} s, {rss['cells'] / rss['seconds'] / 1e9:.2f} GCUPS)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
