"""The sorted BAM writer's bucket files and byte shuffling: records gathered in a new order
into one reused buffer, and appended to per-range files with their keys and lengths."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc.files import open_pieces
from hpc.kernels.fastq import copy_runs


def gather(data: np.ndarray, starts: np.ndarray, order: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Records ``order[0], order[1] ...`` (record k: ``data[starts[k]:starts[k+1]]``) one after
    another into ``out``; returns where each begins there (and the end)."""
    sizes = starts[order + 1] - starts[order]
    out_starts = np.zeros(order.shape[0] + 1, dtype=np.int64)
    np.cumsum(sizes, out=out_starts[1:])
    copy_runs(data, starts[order], sizes, out_starts[:-1], out)
    return out_starts


class Bucket:
    """Records of one coordinate range, appended to two files: their bytes, and each one's
    key and length (``uint64`` pairs)."""

    def __init__(self, stem: Path) -> None:
        self.paths = [stem.with_suffix(s) for s in (".data", ".keys")]
        # unbuffered: each route hands a bucket one run of records, nothing to gather; 2 x 210 buckets
        # 8-KiB buffers at 10M reads (2 x 42 at 2M) were 2.6 MiB that grew with the read count
        self.files = [open_pieces(p, buffer_size=1) for p in self.paths]
        self.bytes = 0

    def append(self, data: np.ndarray, keys: np.ndarray, lengths: np.ndarray) -> None:
        pairs = np.empty((keys.shape[0], 2), dtype=np.uint64)
        pairs[:, 0], pairs[:, 1] = keys, lengths
        for fh, arr in zip(self.files, (np.ascontiguousarray(data), pairs)):
            fh.write(memoryview(arr).cast("B"))
        self.bytes += int(data.shape[0])

    def load_index(self) -> tuple[np.ndarray, np.ndarray]:
        """The records' keys, and where each begins in the data file (and the end)."""
        for fh in self.files:
            fh.close()
        pairs = np.fromfile(self.paths[1], dtype=np.uint64).reshape(-1, 2)
        starts = np.zeros(pairs.shape[0] + 1, dtype=np.int64)
        np.cumsum(pairs[:, 1].astype(np.int64), out=starts[1:])
        return pairs[:, 0].copy(), starts

    def remove(self) -> None:
        for fh in self.files:
            fh.close()
        for p in self.paths:
            p.unlink(missing_ok=True)


class Scratch:
    """One byte buffer reused for every gather: fresh memory costs its page faults, and on
    this project's VMs a page the host has taken back costs far more (a shard's buckets cut
    from new buffers took 3.5 s of CPU at 2M reads in the flow's process, against 0.9 s)."""

    def __init__(self) -> None:
        self.buf = np.empty(0, dtype=np.uint8)

    def take(self, n: int) -> np.ndarray:
        if self.buf.shape[0] < n:
            self.buf = np.empty(n, dtype=np.uint8)
        return self.buf[:n]


def route(buckets: list[Bucket], which: np.ndarray, data: np.ndarray, starts: np.ndarray,
           keys: np.ndarray, scratch: Scratch) -> None:
    """Append each record to bucket ``which[k]``, keeping their order within a bucket: the
    records are gathered in bucket order into ``scratch`` (one copy), then each bucket's run
    is written."""
    order = np.argsort(which, kind="stable")
    starts = starts - starts[0]
    out = scratch.take(int(starts[-1]))
    out_starts = gather(data, starts, order, out)
    sizes, ordered_keys = np.diff(out_starts), keys[order]
    counts = np.bincount(which, minlength=len(buckets))
    ends = np.cumsum(counts)
    for b in np.nonzero(counts)[0]:
        lo, hi = int(ends[b] - counts[b]), int(ends[b])
        buckets[b].append(out[out_starts[lo]:out_starts[hi]], ordered_keys[lo:hi], sizes[lo:hi])
