"""Data-plane benchmark: ``python -m bench data`` (``make bench-data``).

Generates N reads of 150 bp as FASTQ (plain and gzip), then measures, in the same run:
a plain single-process numpy parse of the file (the reference), and ingest + Ray encode +
stage through the Prefect tasks (MiB/s of FASTQ per core, driver and worker peak RSS
from a process-tree sampler); then round trips of one object through two S3-compatible
servers on loopback (``bench.s3``).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from hpc.files import MIB

READ_LEN = 150
RECORD = 1 + 10 + 1 + READ_LEN + 3 + READ_LEN + 1  # "@r%09d\n" seq "\n+\n" qual "\n"


def fastq_block(rng, ref: np.ndarray, first: int, n: int) -> bytes:
    """n fixed-width FASTQ records cut from ``ref`` with 0.6% substitutions, built in numpy."""
    rec = np.empty((n, RECORD), dtype=np.uint8)
    rec[:, 0] = ord("@")
    rec[:, 1] = ord("r")
    ids = np.arange(first, first + n)
    for d in range(9):
        rec[:, 10 - d] = ord("0") + (ids // 10**d) % 10
    rec[:, 11] = 10
    pos = rng.integers(0, ref.shape[0] - READ_LEN, n)
    seq = ref[pos[:, None] + np.arange(READ_LEN)]
    subs = rng.random(seq.shape) < 0.006
    seq[subs] = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, int(subs.sum()))]
    rec[:, 12:12 + READ_LEN] = seq
    rec[:, 12 + READ_LEN:15 + READ_LEN] = np.frombuffer(b"\n+\n", np.uint8)
    rec[:, 15 + READ_LEN:15 + 2 * READ_LEN] = ord("I")
    rec[:, -1] = 10
    return rec.tobytes()


def generate(out: Path, reads: int, seed: int) -> tuple[Path, Path]:
    plain, gz = out / f"reads_{reads}.fq", out / f"reads_{reads}.fq.gz"
    if plain.is_file() and plain.stat().st_size == reads * RECORD and gz.is_file():
        return plain, gz
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ref = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, 4_000_000)]
    with open(plain, "wb") as fp, gzip.open(gz, "wb", compresslevel=1) as fz:
        for first in range(0, reads, 200_000):
            block = fastq_block(rng, ref, first, min(200_000, reads - first))
            fp.write(block)
            fz.write(block)
    return plain, gz


def numpy_parse(buf: np.ndarray) -> int:
    """A plain numpy parse of strict four-line FASTQ: line ends, structure checks, the bases
    gathered and normalized through a lookup table, the names cut out. Returns the reads."""
    from tasks.genomics.fastx import NORMALIZE

    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl[:-1] + 1))
    h, s, p, q = (starts[i::4] for i in range(4))
    s_len = nl[1::4] - s
    if not (np.all(buf[h] == 64) and np.all(buf[p] == 43) and np.all(s_len == nl[3::4] - q)):
        raise ValueError("not strict four-line FASTQ")
    first = np.repeat(np.cumsum(s_len) - s_len, s_len)
    bases = np.frombuffer(NORMALIZE, dtype=np.uint8)[buf[np.repeat(s, s_len) + (np.arange(int(s_len.sum())) - first)]]
    if np.any(bases == 0):
        raise ValueError("invalid base")
    names = [buf[a:b].tobytes().split(None, 1)[0] for a, b in zip((h + 1).tolist(), nl[0::4].tolist())]
    return len(names)


def numpy_parse_mb_s(path: Path) -> float:
    """The reference: one process reads the file (same chunk reader) and parses it with numpy."""
    from tasks.genomics.chunks import chunks

    t0 = time.perf_counter()
    size = 0
    for chunk in chunks(path, 50_000, 64):
        numpy_parse(chunk.read(path, scratch="read"))  # one reused buffer, as the workers read
        size += chunk.length
    return size / MIB / (time.perf_counter() - t0)


def data_plane(path: Path, staging: Path, shard_size: int, workers: int) -> dict:
    from bench.meter import TreeSampler
    from bench.run import task_intervals
    from flows.benchmark import data_plane_benchmark

    t0 = time.time()
    with TreeSampler(interval=0.2) as sampler:
        state = data_plane_benchmark(str(path), str(staging), shard_size, workers, return_state=True)
    wall = time.time() - t0
    result = state.result()
    stages = {name: end - start for name, start, end in task_intervals(state.state_details.flow_run_id)}
    me = os.getpid()
    others = [(rss, name) for pid, (name, rss) in sampler.peak_by_pid.items() if pid != me]
    biggest = max(others, default=(0, "none"))
    shutil.rmtree(result["root"], ignore_errors=True)
    return {**result, "wall_s": wall, "stages": stages, "driver_peak_mib": sampler.peak_by_pid[me][1] / MIB,
            "worker_peak_mib": biggest[0] / MIB, "worker_peak_name": biggest[1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench data", description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=10_000_000, help="reads for the data plane (0 skips it)")
    parser.add_argument("--shard-size", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--s3-mb", type=int, default=1024, help="object size for the S3 round trip (0 skips)")
    parser.add_argument("--s3-repeats", type=int, default=4,
                        help="round trips per S3 server and client (medians printed; even, as the two clients "
                        "take turns going first)")
    parser.add_argument("--work", type=Path, default=Path(".helixflow/bench-data"))
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.reads:
        data_plane_report(work, args.reads, args.seed, args.shard_size, args.workers)
    if args.s3_mb:
        from bench.s3 import s3_report

        s3_report(work, args.s3_mb, args.s3_repeats)
    return 0


def data_plane_report(work: Path, reads: int, seed: int, shard_size: int, workers: int) -> None:
    t0 = time.perf_counter()
    plain, gz = generate(work, reads, seed)
    print(f"data: {reads:,} reads of {READ_LEN} bp, {plain.stat().st_size / MIB:,.0f} MiB FASTQ "
          f"({gz.stat().st_size / MIB:,.0f} MiB gzip); generated in {time.perf_counter() - t0:.0f} s; "
          f"{os.cpu_count()} CPUs, {workers} Ray workers", flush=True)
    base = numpy_parse_mb_s(plain)
    print(f"reference: single-process numpy parse of the plain file: {base:7.1f} MiB/s", flush=True)
    fastq_mib = plain.stat().st_size / MIB
    cores = os.cpu_count() or 1
    for label, path in (("plain", plain), ("gzip", gz)):
        r = data_plane(path, work / "fsx", shard_size, workers)
        enc = r["stages"].get("encode-reads", float("nan"))
        print(f"{label:5s} ingest+encode+stage: {r['reads']:,} reads, {r['shards']} shards, wall {r['wall_s']:.1f} s "
              f"(ingest {r['stages'].get('ingest-reads', 0):.1f}, encode {enc:.1f}, stage "
              f"{r['stages'].get('stage-reads', 0):.1f}); encode {fastq_mib / enc:.1f} MiB/s of FASTQ = "
              f"{fastq_mib / enc / cores:.1f} MiB/s per core ({fastq_mib / enc / cores / base:.2f}x "
              f"the reference); driver peak RSS {r['driver_peak_mib']:.0f} MiB, largest other process "
              f"{r['worker_peak_mib']:.0f} MiB ({r['worker_peak_name']})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
