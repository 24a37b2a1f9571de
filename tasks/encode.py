"""Encode task: stream reads into encoded shards on the staging folder (exact decode check),
on Ray. Shards completed by an earlier run are reused."""

from __future__ import annotations

import shutil
import time
from itertools import zip_longest
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from hpc.run_folder import MANIFEST, READS
from tasks.genomics.chunks import chunk_identity, chunks, is_fastq
from tasks.genomics.fastx import FastxFormatError
from tasks.ingest import ReadsInput
from tasks.runtime.handoff import SHARED_MEMORY, Handoff, workers_here
from tasks.runtime.options import IO_TASK
from tasks.runtime.ray_cluster import stream_on_ray

# The functions Ray runs live in modules without Prefect, so workers start without importing it.
from tasks.storage.shards import (
    check_unique_names,
    clean_temp_files,
    completed,
    encode_chunk_file,
    encode_pair_file,
    encode_shard_file,
    has_record,
    read_batches,
)


@task(name="encode-reads", **IO_TASK)
def encode_reads(reads: ReadsInput, root: str, shard_size: int, shard_mb: float = 64.0,
                 qualities: bool = True, mate2: ReadsInput | None = None, interleaved: bool = False) -> list[dict]:
    """Stream the reads file into shards of ``shard_size`` reads (or ``shard_mb`` MiB of bases);
    each shard is encoded, decode-checked and written to ``<root>/reads/`` by a Ray worker.
    The driver holds one batch being parsed plus the shards in flight. Shards that a
    previous run of the same inputs completed are reused. FASTQ qualities are kept unless
    ``qualities`` is False.

    Pairs (``mate2``: R2's file; or ``interleaved``): each shard holds ``shard_size // 2``
    pairs, mates side by side, cut by record count alone (``shard_mb`` does not apply), and
    checked to stay in step."""
    import ray

    root_path = Path(root)
    (root_path / MANIFEST).unlink(missing_ok=True)  # not complete until the stage task writes it again
    removed = clean_temp_files(root_path)
    reused = 0
    fastq = is_fastq(reads.path)
    # FASTQ: the driver only cuts the stream at record boundaries; workers parse. FASTA
    # (multi-line records): the driver parses records into batches.
    paired = mate2 is not None or interleaved
    if paired and not fastq:
        raise FastxFormatError(reads.path, 1, "paired reads must be FASTQ (FASTA records carry no qualities and "
                               "are not read as pairs)")
    remote = ray.remote(encode_pair_file if mate2 is not None else encode_chunk_file if fastq else encode_shard_file)
    source = str(reads.path)
    # a gzip stream's chunks reach workers on this machine through shared memory, not the object store
    handoff = Handoff(SHARED_MEMORY if fastq and workers_here() else None)

    def work():
        nonlocal reused
        if mate2 is not None:
            pairs = max(1, shard_size // 2)
            halves = zip_longest(chunks(reads.path, pairs, float("inf"), reuse=True),
                                 chunks(mate2.path, pairs, float("inf"), reuse=True))
            for shard_no, (c1, c2) in enumerate(halves):
                if c1 is None or c2 is None:
                    short, other = (reads.path, mate2.path) if c1 is None else (mate2.path, reads.path)
                    more = c2 if c1 is None else c1
                    raise FastxFormatError(short, None, f"holds fewer reads than {other}, which goes on at its line "
                                           f"{more.first_line}; expected R1 and R2 to hold the same number of reads")
                done = None
                if has_record(root_path, READS, shard_no):
                    identity = chunk_identity(c1, c1.read(source))
                    identity["mate_crc32"] = chunk_identity(c2, c2.read(str(mate2.path)))["chunk_crc32"]
                    done = completed(root_path, READS, shard_no, **identity)
                reused += done is not None
                if done is None:
                    c1, c2 = handoff.hand(shard_no, c1, 1), handoff.hand(shard_no, c2, 2)
                yield shard_no, (shard_no, c1, c2, source, str(mate2.path)), done, c1.done
            return
        if fastq:
            cut = (2 * max(1, shard_size // 2), float("inf")) if interleaved else (shard_size, shard_mb)
            for shard_no, chunk in enumerate(chunks(reads.path, *cut, reuse=True)):
                done = None
                if has_record(root_path, READS, shard_no):
                    done = completed(root_path, READS, shard_no, **chunk_identity(chunk, chunk.read(source)))
                reused += done is not None
                if done is None:
                    chunk = handoff.hand(shard_no, chunk)
                yield shard_no, (shard_no, chunk, source), done, chunk.done
            return
        for shard_no, (names, seqs) in enumerate(read_batches(reads.path, shard_size, shard_mb)):
            done = completed(root_path, READS, shard_no, reads=len(names), first=names[0], last=names[-1])
            reused += done is not None
            yield shard_no, (shard_no, names, seqs), done, 0.0

    t0 = time.perf_counter()
    fresh = not (root_path / READS).exists()
    try:
        extra = (qualities,) if mate2 is not None else (qualities, interleaved) if fastq else ()
        with handoff:
            entries = stream_on_ray(lambda item: remote.remote(*item, root, *extra), work(), "encode",
                                    "encode-progress", done=handoff.release)
        check_unique_names(root_path, [entries[i] for i in range(len(entries))], source)
    except FastxFormatError:
        if fresh:  # bad input: leave no half-made run folder behind
            shutil.rmtree(root_path, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    shards = [entries[i] for i in range(len(entries))]
    n_reads = sum(e["reads"] for e in shards)
    n_bases = sum(e["bases"] for e in shards)
    text_bytes = sum(e.get("chunk_bytes", 0) for e in shards) or reads.bytes  # FASTQ: decompressed bytes
    mb_s = text_bytes / seconds / 2**20 if seconds > 0 else 0.0
    get_run_logger().info("encoded %d shards (%d reused), %d reads at %.0f reads/s, %.1f MB/s of %s",
                          len(shards), reused, n_reads, n_reads / seconds, mb_s, "FASTQ" if fastq else "input")
    lengths = np.array([lc for e in shards for lc in e["length_counts"]], dtype=np.int64).reshape(-1, 2)
    create_table_artifact(
        key="encode-summary",
        table=[{"shards": len(shards), "reused": reused, "reads": n_reads, "bases": n_bases,
                "min_len": int(lengths[:, 0].min()) if len(lengths) else 0,
                "max_len": int(lengths[:, 0].max()) if len(lengths) else 0,
                "packed_bytes": sum(e["bytes"] for e in shards), "seconds": round(seconds, 3),
                "mb_per_s": round(mb_s, 2), "decode_check": "exact, every read", "temp_files_removed": removed}],
        description="Encode/decode on Ray, streamed to the staging folder",
    )
    return shards
