"""The reference's minimizer index built from the packed genome, on several threads.

The work is the counting sort of :mod:`hpc.kernels.index` (its kernels release the GIL):
1. the genome's contigs are cut into consecutive runs of about equal bases, one a thread, and
   each thread counts its run's minimizers per bucket into counters of its own;
2. the counters' sum gives each bucket's offset (the table), and each thread's first free
   entry in a bucket is the offset plus the counts of the runs before its own, so each thread
   places its run's minimizers in the order one thread would have: by position;
3. the buckets are sorted by their low bits on the same threads, each a range of buckets
   holding about as many entries.
The index is the same, byte for byte, whatever the thread count. Each thread beyond the first
adds its own counters and batch buffers (:func:`tasks.genomics.index_layout.build_buffer_bytes`).
A contig is never cut, so a genome of one contig is counted and placed on one thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hpc.genome import Genome
from hpc.kernels.index import occurrence_histogram, scan_minimizers, sort_buckets
from tasks.genomics.index_layout import build_batch, index_layout
from tasks.genomics.seeding import HIST_CAP, ReferenceIndex, occurrence_limit

MAX_THREADS = 4  # each thread beyond the first costs its counters (up to 256 MiB) and a batch (up to 384 MiB)
GROUPS = 64  # contigs are scanned in groups of about this share of the genome, with progress between them


def build_threads() -> int:
    """Threads an index build uses: the CPUs this process may run on, at most :data:`MAX_THREADS`."""
    return max(1, min(MAX_THREADS, len(os.sched_getaffinity(0))))


def build_index(genome: Genome, k: int, w: int, alloc=None, batch: int | None = None,
                progress: Callable[[str, float], None] | None = None, threads: int | None = None) -> ReferenceIndex:
    """Index ``genome`` (see the module doc). ``alloc(name, dtype, n)`` makes each output array
    (a memory-mapped file for a large reference); by default they are in memory. ``batch``:
    minimizers a thread groups by bucket at a time (:func:`build_batch` by default).
    ``progress(step, fraction)``: called as each group of contigs (about a 64th of the genome) is
    scanned, ``step`` ``sketching`` (the counting scan) or ``placing`` (fraction: of the genome's
    bases), then ``sorting``. ``threads``: :func:`build_threads` by default."""
    alloc = alloc or (lambda name, dtype, n: np.empty(n, dtype=dtype))
    layout = index_layout(genome.total, len(genome.names), k, w)
    shift, bits = np.uint64(layout["shift"]), layout["bits"]
    runs = _runs(list(_contig_groups(genome.lengths, genome.total // GROUPS)), threads or build_threads())
    batch = batch or build_batch(genome.total, len(genome.names), k, w)
    buffers = [(np.empty(batch, np.uint64), np.empty(batch, layout["position"]),
                np.empty(batch, np.uint64), np.empty(batch, layout["position"])) for _ in runs]
    counts = [np.zeros(1 << bits, dtype=np.uint32) for _ in runs]
    none = np.zeros(0, dtype=np.uint32)
    report = _Progress(progress, genome.total)

    def scan(mode: int, j: int, slots: np.ndarray, rest: np.ndarray, positions: np.ndarray) -> int:
        found = 0
        for lo, hi, size in runs[j]:
            found += scan_minimizers(genome.packed, genome.nmask, genome.starts[lo:hi], genome.lengths[lo:hi], k, w,
                                     shift, bits, mode, counts[j] if mode == 0 else none, slots, rest, positions,
                                     *buffers[j])
            report("placing" if mode else "sketching", size)
        return found

    with ThreadPoolExecutor(max(len(runs), 1), thread_name_prefix="index-build") as pool:
        found = sum(pool.map(lambda j: scan(0, j, none, none, none), range(len(runs))))
        table = alloc("table", np.uint32 if found < 2**32 else np.uint64, (1 << bits) + 1)
        table[0] = 0
        table[1:] = counts[0] if counts else 0
        for c in counts[1:]:
            table[1:] += c
        np.cumsum(table[1:], out=table[1:])
        slots = _first_free(table, counts)
        counts.clear()  # the counters are the slots now, or were copied into them
        rest = alloc("rest", layout["rest"], found)
        positions = alloc("positions", layout["position"], found)
        report.restart()
        list(pool.map(lambda j: scan(1, j, slots[j], rest, positions), range(len(runs))))
        slots.clear()
        buffers.clear()
        report.step("sorting")
        cuts = _bucket_cuts(table, max(len(runs), 1))
        list(pool.map(lambda j: sort_buckets(table[cuts[j] : cuts[j + 1] + 1], rest, positions), range(len(cuts) - 1)))
        hist = sum(pool.map(lambda j: occurrence_histogram(table[cuts[j] : cuts[j + 1] + 1], rest, HIST_CAP),
                            range(len(cuts) - 1)))
    return ReferenceIndex(genome, k, w, int(shift), table, rest, positions, occurrence_limit(hist))


def _first_free(table: np.ndarray, counts: list[np.ndarray]) -> list[np.ndarray]:
    """Each run's first free entry per bucket: the bucket's end less the counts of its own run
    and the runs after it, worked out from the last run back in each run's counters (no
    array more)."""
    slots: list[np.ndarray] = []
    after = table[1:]
    for c in reversed(counts):
        c = c if c.dtype == table.dtype else c.astype(table.dtype)
        np.subtract(after, c, out=c)
        slots.append(c)
        after = c
    return slots[::-1]


def _contig_groups(lengths: np.ndarray, at_least: int) -> Iterator[tuple[int, int, int]]:
    """Consecutive contigs ``lo .. hi`` of at least ``at_least`` bases together (the last
    group may hold fewer), and their bases: one scan call each, so progress comes between
    them and a many-contig assembly is not one call a contig."""
    lo = size = 0
    for hi, n in enumerate(lengths.tolist(), start=1):
        size += n
        if size >= at_least or hi == lengths.shape[0]:
            yield lo, hi, size
            lo, size = hi, 0


def _runs(groups: list[tuple[int, int, int]], threads: int) -> list[list[tuple[int, int, int]]]:
    """The groups cut into at most ``threads`` consecutive runs of about equal bases (none empty)."""
    total = sum(size for _, _, size in groups) or 1
    runs: list[list[tuple[int, int, int]]] = [[] for _ in range(max(1, min(threads, len(groups))))]
    before = 0
    for group in groups:
        runs[min(len(runs) - 1, before * len(runs) // total)].append(group)
        before += group[2]
    return [run for run in runs if run]


def _bucket_cuts(table: np.ndarray, parts: int) -> list[int]:
    """Bucket numbers that cut the index into ``parts`` ranges of about equal entries."""
    n_buckets = table.shape[0] - 1
    marks = np.searchsorted(table, np.linspace(0, int(table[-1]), parts + 1)[1:-1])
    return sorted({0, n_buckets, *np.clip(marks, 0, n_buckets).tolist()})


class _Progress:
    """``progress`` called from the scanning threads in turn, with the share of the genome's
    bases the threads have scanned together in this scan."""

    def __init__(self, progress: Callable[[str, float], None] | None, total: int) -> None:
        self.progress, self.total, self.done, self.lock = progress, max(total, 1), 0, threading.Lock()

    def restart(self) -> None:
        self.done = 0

    def step(self, name: str) -> None:
        if self.progress is not None:
            self.progress(name, 0.0)

    def __call__(self, step: str, bases: int) -> None:
        with self.lock:
            self.done += bases
            if self.progress is not None:
                self.progress(step, self.done / self.total)
