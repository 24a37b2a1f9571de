"""Shards on the staging folder, written by Ray workers, each with a completion record.

``reads/shard_NNNNN.npz`` and ``candidates/shard_NNNNN.npz`` are written to a temp name and
renamed; then ``<file>.done.json`` records its size, sha256, read count and the names of
its first and last read. A rerun over the same run folder reuses a shard whose record
matches the file on disk and the reads the driver is parsing now; a file without a record
(the run died between the two renames) or one that fails its checksum is rewritten.
No Prefect here: Ray workers import this module.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from hpc.codec import BASE_MEMBERS
from hpc.files import MIB, atomic_write_text, save_npz_atomic
from hpc.process import fixed_mmap_threshold, release_free_memory
from hpc.manifest import ManifestError, file_entry, load_npz_verified, verify_entry
from hpc.run_folder import CANDIDATES, READS, record_path, shard_path
from tasks.genomics.chunks import Chunk, chunk_identity, encode_chunk
from tasks.genomics.encoding import (
    MAX_NAME_BYTES,
    EncodedShard,
    encode_and_check,
    name_hashes,
    name_list,
    name_too_long,
    repeated_name_candidates,
    shard_mates,
)
from tasks.genomics.fastx import FastxFormatError, read_fastx
from tasks.genomics.pairs import check_mates, interleave, pair_interleaved
from tasks.genomics.seeding import find_candidates
from tasks.storage.index_cache import IndexFiles, open_index_cached


def read_batches(path: Path, shard_reads: int, shard_mb: float) -> Iterator[tuple[list[str], list[bytes]]]:
    """Stream (names, seqs) batches of at most ``shard_reads`` reads or ``shard_mb`` MiB of bases;
    only the batch being filled is held."""
    names: list[str] = []
    seqs: list[bytes] = []
    size = 0
    limit = shard_mb * MIB
    for record in read_fastx(path):
        if len(record.name.encode()) > MAX_NAME_BYTES:
            raise FastxFormatError(path, record.line, name_too_long(len(record.name.encode())))
        names.append(record.name)
        seqs.append(record.seq)
        size += len(record.seq)
        if len(names) >= shard_reads or size >= limit:
            yield names, seqs
            names, seqs, size = [], [], 0
    if names:
        yield names, seqs


def has_record(root: Path, kind: str, shard_no: int) -> bool:
    return record_path(shard_path(root, kind, shard_no)).is_file()


def completed(root: Path, kind: str, shard_no: int, **expect) -> dict | None:
    """The completion record of a shard file when it verifies and matches ``expect``."""
    path = shard_path(root, kind, shard_no)
    rec = record_path(path)
    if not rec.is_file():
        return None
    try:
        entry = json.loads(rec.read_text())
        verify_entry(Path(root), entry)
    except (ValueError, OSError, KeyError, ManifestError):
        return None
    if any(entry.get(k) != v for k, v in expect.items()):
        return None
    return entry


def _finish(root: Path, path: Path, sha256: str | None = None, **fields) -> dict:
    entry = file_entry(Path(root), path, sha256, **fields)
    atomic_write_text(record_path(path), json.dumps(entry))
    return entry


def _worker_task(slow: bool = True) -> None:
    """The first step of each task on a Ray worker: chunk after chunk its arrays are freed, and
    they go back to the system (a fixed mmap threshold; what the last task freed in the heap,
    released), not into heaps that keep them; then, with ``slow``, a slow stage for
    kill-and-resume tests."""
    fixed_mmap_threshold()
    release_free_memory()
    delay = float(os.environ.get("HELIXFLOW_SHARD_SLEEP", 0)) if slow else 0.0
    if delay:
        time.sleep(delay)


def _write_reads(root: str, shard_no: int, shard: EncodedShard, first: str, last: str, **identity) -> dict:
    """Write an encoded shard under ``reads/`` and its completion record; return the record."""
    path = shard_path(Path(root), READS, shard_no)
    digest = save_npz_atomic(path, **shard.to_arrays())
    lengths, counts = np.unique(shard.lengths, return_counts=True)
    return _finish(Path(root), path, digest, shard=shard_no, reads=shard.n_reads, bases=shard.n_bases, mates=shard.mates,
                   first=first, last=last, length_counts=[[int(a), int(b)] for a, b in zip(lengths, counts)],
                   **identity)


def encode_shard_file(shard_no: int, names: list[str], seqs: list[bytes], root: str) -> dict:
    """Encode one shard (exact decode check), write it and its record; return the record."""
    _worker_task()
    return _write_reads(root, shard_no, encode_and_check(shard_no, names, seqs), names[0], names[-1])


def encode_chunk_file(shard_no: int, chunk: Chunk, source: str, root: str, qualities: bool = True,
                      interleaved: bool = False) -> dict:
    """Read a FASTQ chunk (from the file, or the bytes given for a gzip stream), encode it
    (with its qualities unless ``qualities`` is False), check that every base decodes back
    exactly, write the shard and its record (with the chunk's identity, for resume).
    ``interleaved``: the chunk holds pairs, R1 then R2, checked to be mates."""
    _worker_task()
    data = chunk.read(source, scratch="read")
    shard = encode_chunk(data, source, chunk.first_line, shard_no, qualities)
    if interleaved:
        shard = pair_interleaved(shard, source, chunk.first_line)
    first, last = name_list(shard.names[[0, -1]]) if shard.n_reads else ["", ""]
    return _write_reads(root, shard_no, shard, first, last, **chunk_identity(chunk, data))


def encode_pair_file(shard_no: int, chunk1: Chunk, chunk2: Chunk, source1: str, source2: str, root: str,
                     qualities: bool = True) -> dict:
    """:func:`encode_chunk_file` for the same reads of R1 and R2: both halves encoded and
    checked, their names checked to be mates, and one shard of pairs written."""
    _worker_task()
    data1 = chunk1.read(source1, scratch="mate1")
    data2 = chunk2.read(source2, scratch="mate2")
    half1 = encode_chunk(data1, source1, chunk1.first_line, shard_no, qualities)
    half2 = encode_chunk(data2, source2, chunk2.first_line, shard_no, qualities)
    pairs = check_mates(name_list(np.asarray(half1.names)), name_list(np.asarray(half2.names)), source1, source2,
                        chunk1.first_line, chunk2.first_line)
    shard = interleave(half1, half2, pairs)
    identity = chunk_identity(chunk1, data1)
    identity["mate_crc32"] = chunk_identity(chunk2, data2)["chunk_crc32"]
    return _write_reads(root, shard_no, shard, pairs[0], pairs[-1], **identity)


IN_MEMORY_NAMES = 1 << 21  # names checked in memory (16 MiB of hashes); more go through bucket files
BUCKET_NAMES = 1 << 21  # names a bucket file holds, about (32 MiB with their numbers)
MAX_NAME_BUCKETS = 256


def repeated_hashes(hashes: Iterable[np.ndarray], total: int, scratch: Path) -> list[tuple[int, int]]:
    """:func:`repeated_name_candidates` of every shard's name hashes, in order, read numbers
    counted across them (``total`` in all). Up to :data:`IN_MEMORY_NAMES` they are sorted in
    memory; more are split by their top bits into bucket files in a temp folder under
    ``scratch``, then each bucket is sorted on its own: memory stays at a bucket's, whatever
    the read count (all of a 30x human genome's 310M pairs' hashes at once would be 10 GiB
    to sort)."""
    if total <= IN_MEMORY_NAMES:
        return repeated_name_candidates(list(hashes))
    bits = min(MAX_NAME_BUCKETS.bit_length() - 1, max(1, math.ceil(math.log2(total / BUCKET_NAMES))))
    n_buckets = 1 << bits
    folder = Path(tempfile.mkdtemp(prefix=".name-check-", dir=scratch))
    paths = [folder / f".bucket_{b:03d}.tmp" for b in range(n_buckets)]  # a killed run's: clean_temp_files
    try:
        with ExitStack() as files:
            out = [files.enter_context(open(p, "wb")) for p in paths]
            base = 0
            for h in hashes:  # each bucket gets its names in read order: by shard, then stably
                h = np.ascontiguousarray(h, dtype=np.uint64)
                which = (h >> np.uint64(64 - bits)).astype(np.int64)
                order = np.argsort(which, kind="stable")
                rec = np.empty((h.shape[0], 2), dtype=np.uint64)
                rec[:, 0], rec[:, 1] = h[order], order + base
                counts = np.bincount(which, minlength=n_buckets)
                ends = np.cumsum(counts)
                for b in np.nonzero(counts)[0]:
                    out[b].write(rec[ends[b] - counts[b]:ends[b]].tobytes())
                base += h.shape[0]
        pairs = []
        for p in paths:
            rec = np.fromfile(p, dtype=np.uint64).reshape(-1, 2)
            p.unlink()
            pairs += [(int(rec[a, 1]), int(rec[b, 1])) for a, b in repeated_name_candidates([rec[:, 0]])]
        return sorted(pairs, key=lambda ab: ab[1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_unique_names(root: Path, entries: list[dict], source: str) -> None:
    """Refuse a reads file in which two reads share a name (they could not be told apart in
    SAM/BAM, nor matched to their mates): FastxFormatError naming both lines (FASTQ) or
    record numbers (FASTA). Reads only the names' hashes (:func:`repeated_hashes`), then the
    two shards concerned."""
    steps = []
    for e in entries:  # a shard of pairs names each pair twice: its mate-1 reads are the names
        with np.load(Path(root) / e["path"], allow_pickle=False) as data:
            steps.append(shard_mates(data))
    base = np.cumsum([0] + [int(e["reads"]) // st for e, st in zip(entries, steps)])

    def hashes() -> Iterator[np.ndarray]:
        for e, step in zip(entries, steps):
            with np.load(Path(root) / e["path"], allow_pickle=False) as data:
                yield (data["name_hash"] if "name_hash" in data.files else name_hashes(data["names"]))[::step]

    def where(g: int) -> tuple[str, int | None, str]:
        s = int(np.searchsorted(base, g, side="right") - 1)
        k = (g - int(base[s])) * steps[s]
        with np.load(Path(root) / entries[s]["path"], allow_pickle=False) as data:
            name = name_list(data["names"][k:k + 1])[0]
        first = entries[s].get("first_line")  # FASTQ chunks: four lines a record
        record = k // 2 if "mate_crc32" in entries[s] else k  # R1 + R2: read k is R1's record k // 2
        line = None if first is None else int(first) + 4 * record
        return name, line, f"line {line}" if line is not None else f"record {g + 1}"

    for a, b in repeated_hashes(hashes(), int(base[-1]), Path(root)):
        (name_a, _, at_a), (name_b, line_b, at_b) = where(a), where(b)
        if name_a == name_b:
            raise FastxFormatError(source, line_b, ("" if line_b is not None else f"{at_b}: ")
                                   + f"read name {name_b!r} repeats the read at {at_a}; expected unique read "
                                   "names (reads sharing a name cannot be told apart in SAM/BAM)")


def seed_shard_file(shard: dict, files: IndexFiles, root: str, max_candidates: int) -> dict:
    """Candidate windows of one staged shard (verified before use), written with a record;
    the index is memory-mapped from ``files``, once per worker process."""
    _worker_task(slow=False)
    arrays = load_npz_verified(Path(root), shard, BASE_MEMBERS)  # the bases: not the names or qualities
    cands = find_candidates(open_index_cached(files), EncodedShard.from_arrays(arrays), max_candidates=max_candidates)
    path = shard_path(Path(root), CANDIDATES, shard["shard"])
    digest = save_npz_atomic(path, **cands.to_arrays())
    return _finish(Path(root), path, digest, shard=shard["shard"], windows=len(cands), cells=cands.cells,
                   reads_sha256=shard["sha256"], seeded=int(np.unique(cands.read).shape[0]))


def clean_temp_files(root: Path) -> int:
    """Remove temp files a killed run left behind; returns how many."""
    removed = 0
    for tmp in Path(root).rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed
