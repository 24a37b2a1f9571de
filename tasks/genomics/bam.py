"""Coordinate-sorted, indexed BAM from binary records added in pieces (one shard's at a
time, in any order), sorted here: no SAM text is parsed again. Records are held until
``memory_bytes``; past it they go to bucket files by coordinate range (ranges cut from the
records held so far), and every later piece straight to its buckets, so memory stays
bounded by one piece whatever the read count. At the end each
bucket is sorted in memory (one too big for that is first split by rank, which skewed
data such as amplicons need) and written as BGZF, and its records go into the BAI index
as they are written (:mod:`tasks.genomics.bai`). The order is samtools sort's: reference,
position, forward before reverse, then the order records were added."""

from __future__ import annotations

import os
import queue
import shutil
import struct
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from hpc.files import FILE_MODE, open_pieces
from hpc.process import release_free_memory
from tasks.genomics.bai import BaiBuilder
from tasks.genomics.bam_buckets import Bucket, Scratch, gather, route
from tasks.genomics.bgzf import BgzfWriter

UNMAPPED_TID = 1 << 31  # a record without a reference sorts after every reference
MAX_BUCKETS = 256
EMIT_BYTES = 4 << 20  # sorted records handed to BGZF at a time
Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # records' bytes, where each begins (and the end), their keys
BAI_MAX_LENGTH = (1 << 29) - 1  # the BAI's bins reach 2^29 bp


class BamWriteError(RuntimeError):
    """The BAM could not be written."""


def coordinate_keys(ref: np.ndarray, pos: np.ndarray, flag: np.ndarray) -> np.ndarray:
    """samtools sort's key: (reference, 1-based position, reverse flag) in one ``uint64``;
    ``ref`` -1 (no reference) sorts last."""
    tid = np.where(ref < 0, UNMAPPED_TID, ref).astype(np.uint64)
    return (tid << np.uint64(32)) | (pos.astype(np.uint64) << np.uint64(1)) | ((flag.astype(np.uint64) >> 4) & 1)


def bai_refusal(names: list[str], lengths: list[int]) -> str | None:
    """Why these contigs cannot have a BAI index (one is longer than its bins reach), or None."""
    for name, length in zip(names, lengths):
        if length > BAI_MAX_LENGTH:
            return (f"contig {name!r} is {int(length):,} bp; a BAI index holds contigs of up to {BAI_MAX_LENGTH:,} bp "
                    "(2^29 - 1) and a CSI index is not written yet: run with --bam false for PAF only")
    return None


def bam_header(text: str, names: list[str], lengths: list[int]) -> bytes:
    """BAM's magic, the SAM header text and the reference list (SAMv1 4.2)."""
    raw = text.encode()
    parts = [b"BAM\1", struct.pack("<i", len(raw)), raw, struct.pack("<i", len(names))]
    for name, length in zip(names, lengths):
        b = name.encode() + b"\0"
        parts += [struct.pack("<i", len(b)), b, struct.pack("<i", length)]
    return b"".join(parts)


class SortedBamWriter:
    """``with SortedBamWriter(path, header, names, lengths) as bam: bam.add(data, starts, keys)``:
    ``data[starts[k]:starts[k+1]]`` is record k (:func:`hpc.kernels.bam.bam_records`), ``keys``
    its :func:`coordinate_keys`. On a clean exit the sorted BAM lands at ``path`` and its index
    at ``path.bai``, each through a temp file and a rename; on an error nothing is left.
    ``expected_bytes``, the records' size if known, sets how many buckets a spill cuts."""

    def __init__(self, path: Path, header: str, names: list[str], lengths: list[int], threads: int = 2,
                 memory_bytes: int = 32 << 20, level: int = 1, expected_bytes: int = 0) -> None:
        self.path = Path(path)
        why = bai_refusal(names, lengths)
        if why:
            raise BamWriteError(f"{self.path}: {why}")
        self.header = bam_header(header, names, lengths)
        self.index = BaiBuilder(lengths)
        self.threads = max(1, threads)
        self.budget = max(1, memory_bytes)
        self.level = level  # deflate level 1: about half the time of samtools' default, files ~10% larger
        self.expected = expected_bytes
        self.records = 0
        self._held: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._held_bytes = 0
        self._bounds: np.ndarray | None = None
        self._buckets: list[Bucket] = []
        self._buffer, self._bucket_in = Scratch(), Scratch()  # records gathered; a bucket read back

    def __enter__(self) -> "SortedBamWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._scratch = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent))
        self._queue: queue.Queue = queue.Queue()
        self._idle = threading.Semaphore(1)  # one shard at a time in the writer's hands
        self._error: BaseException | None = None
        self._worker = threading.Thread(target=self._work, name="bam-writer", daemon=True)
        self._worker.start()
        return self

    def submit(self, make: Callable[..., Batch | Iterable[Batch]], *args) -> None:
        """``add(*make(*args))`` on the writer's own thread (or ``add(*batch)`` for each batch,
        where ``make`` gives several): one shard's records are made and bucketed while the
        caller goes on with the next (the kernels and ISA-L let go of the GIL); the call waits
        while the shard before is still being made, so one shard's inputs and records are
        held at a time. An error there is raised here, at the next call, or at the end."""
        self._idle.acquire()
        if self._error is not None:
            self._idle.release()
            raise self._error
        self._queue.put((make, args))

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._add_made(job[0](*job[1]))
                except BaseException as e:  # handed to the caller's thread
                    self._error = e
            del job  # the shard's inputs go before the next is handed over
            self._idle.release()

    def _add_made(self, made: Batch | Iterable[Batch]) -> None:
        for batch in (made,) if isinstance(made, tuple) else made:
            self.add(*batch)

    def _finish_worker(self) -> None:
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join()

    def add(self, data: np.ndarray, starts: np.ndarray, keys: np.ndarray) -> None:
        n = int(keys.shape[0])
        if n == 0:
            return
        self.records += n
        if self._bounds is not None:  # the buckets are cut: each batch goes straight to its buckets
            route(self._buckets, np.searchsorted(self._bounds, keys, side="right"), data, starts, keys, self._buffer)
            return
        self._held.append((data[:starts[-1]], starts, keys))
        self._held_bytes += int(starts[-1])
        if self._held_bytes > self.budget:
            self._spill()

    def _cut_buckets(self) -> None:
        """Coordinate ranges of about equal bytes, cut from the records held now."""
        keys = np.concatenate([k for _, _, k in self._held])
        sizes = np.concatenate([np.diff(s) for _, s, _ in self._held])
        order = np.argsort(keys, kind="stable")
        total = max(self.expected, 2 * self._held_bytes)
        n = int(min(MAX_BUCKETS, max(2, -(-total // (self.budget // 2)))))
        cum = np.cumsum(sizes[order])
        cuts = np.searchsorted(cum, cum[-1] * np.arange(1, n) / n)
        self._bounds = np.unique(keys[order][np.minimum(cuts, keys.shape[0] - 1)])
        self._buckets = [Bucket(self._scratch / f"bucket_{b:04d}") for b in range(self._bounds.shape[0] + 1)]

    def _spill(self) -> None:
        if self._bounds is None:
            self._cut_buckets()
        for data, starts, keys in self._held:
            route(self._buckets, np.searchsorted(self._bounds, keys, side="right"), data, starts, keys,
                   self._buffer)
        self._held, self._held_bytes = [], 0

    def _write_records(self, bgzf: BgzfWriter) -> None:
        if self._bounds is None:
            if self._held:
                data = np.concatenate([d for d, _, _ in self._held])
                sizes = np.concatenate([np.diff(s) for _, s, _ in self._held])
                starts = np.zeros(sizes.shape[0] + 1, dtype=np.int64)
                np.cumsum(sizes, out=starts[1:])
                self._emit(bgzf, data, starts, np.concatenate([k for _, _, k in self._held]))
            self._held = []
            return
        self._spill()
        for b, bucket in enumerate(self._buckets):
            self._write_bucket(bgzf, bucket, f"{b:04d}")

    def _emit(self, bgzf: BgzfWriter, data: np.ndarray, starts: np.ndarray, keys: np.ndarray) -> None:
        """Records in key order (stable: ties keep the order they were added in) to the BAM and
        its index, gathered :data:`EMIT_BYTES` at a time into one reused buffer (a bucket's
        sorted copy would cost as much memory again as the bucket)."""
        order = np.argsort(keys, kind="stable")
        ends = np.cumsum(starts[order + 1] - starts[order])
        a, done = 0, 0
        while a < order.shape[0]:
            b = max(a + 1, int(np.searchsorted(ends, done + EMIT_BYTES, side="right")))
            out = self._buffer.take(int(ends[b - 1]) - done)
            out_starts = gather(data, starts, order[a:b], out)
            self.index.add(out, out_starts, bgzf.position)
            bgzf.write(out)
            a, done = b, int(ends[b - 1])

    def _write_bucket(self, bgzf: BgzfWriter, bucket: Bucket, name: str) -> None:
        keys, starts = bucket.load_index()
        if bucket.bytes <= self.budget or keys.shape[0] < 2:
            data = self._bucket_in.take(bucket.bytes)
            with open(bucket.paths[0], "rb") as fh:
                if fh.readinto(memoryview(data)) != bucket.bytes:
                    raise BamWriteError(f"{bucket.paths[0]}: shorter than the {bucket.bytes} bytes written to it")
            self._emit(bgzf, data, starts, keys)
            bucket.remove()
            release_free_memory()  # the bucket's index arrays, under the mmap threshold, freed in the heap
            return
        # Too big to sort at once (reads piled on a few places): split it by sorted rank into
        # parts of half the budget, reading it through once; each part then sorts in memory.
        order = np.argsort(keys, kind="stable")
        part = np.empty(keys.shape[0], dtype=np.int64)
        part[order] = np.cumsum(np.diff(starts)[order]) // (self.budget // 2)
        parts = [Bucket(self._scratch / f"bucket_{name}_{p:04d}") for p in range(int(part.max()) + 1)]
        with open(bucket.paths[0], "rb") as fh:
            a = 0
            while a < keys.shape[0]:
                e = int(np.searchsorted(starts, starts[a] + self.budget // 2, side="right")) - 1
                e = max(e, a + 1)
                chunk = np.frombuffer(fh.read(int(starts[e] - starts[a])), dtype=np.uint8)
                route(parts, part[a:e], chunk, starts[a:e + 1], keys[a:e], self._buffer)
                a = e
        bucket.remove()
        for p, piece in enumerate(parts):
            self._write_bucket(bgzf, piece, f"{name}_{p:04d}")

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._finish_worker()
            if exc_type is not None:
                return
            if self._error is not None:
                raise self._error
            bam, bai = self._scratch / "sorted.bam", self._scratch / "sorted.bam.bai"
            with open_pieces(bam) as fh:
                bgzf = BgzfWriter(fh, self.level, self.threads)
                bgzf.write(self.header)
                self._write_records(bgzf)
                bgzf.close()
            self.index.write(bai, np.asarray(bgzf.block_offsets))
            for src, dst in ((bam, self.path), (bai, Path(f"{self.path}.bai"))):  # the scratch is beside them
                os.chmod(src, FILE_MODE)
                os.replace(src, dst)
        finally:
            for bucket in self._buckets:
                bucket.remove()
            shutil.rmtree(self._scratch, ignore_errors=True)
