"""Encode task: stream reads into encoded shards on the staging folder (exact decode check),
on Ray. Shards completed by an earlier run are reused."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from hpc.run_folder import MANIFEST, READS
from tasks.genomics.chunks import chunk_identity, chunks, is_fastq
from tasks.genomics.fastx import FastxFormatError
from tasks.ingest import ReadsInput
from tasks.runtime.options import IO_TASK
from tasks.runtime.ray_cluster import stream_on_ray

# The functions Ray runs live in modules without Prefect, so workers start without importing it.
from tasks.storage.shards import (
    check_unique_names,
    clean_temp_files,
    completed,
    encode_chunk_file,
    encode_shard_file,
    has_record,
    read_batches,
)


@task(name="encode-reads", **IO_TASK)
def encode_reads(reads: ReadsInput, root: str, shard_size: int, shard_mb: float = 64.0) -> list[dict]:
    """Stream the reads file into shards of ``shard_size`` reads (or ``shard_mb`` MiB of bases);
    each shard is encoded, decode-checked and written to ``<root>/reads/`` by a Ray worker.
    The driver holds one batch being parsed plus the shards in flight. Shards that a
    previous run of the same inputs completed are reused."""
    import ray

    root_path = Path(root)
    (root_path / MANIFEST).unlink(missing_ok=True)  # not complete until the stage task writes it again
    removed = clean_temp_files(root_path)
    reused = 0
    fastq = is_fastq(reads.path)
    # FASTQ: the driver only cuts the stream at record boundaries; workers parse. FASTA
    # (multi-line records): the driver parses records into batches.
    remote = ray.remote(encode_chunk_file if fastq else encode_shard_file)
    source = str(reads.path)

    def work():
        nonlocal reused
        if fastq:
            for shard_no, chunk in enumerate(chunks(reads.path, shard_size, shard_mb, reuse=True)):
                done = None
                if has_record(root_path, READS, shard_no):
                    done = completed(root_path, READS, shard_no, **chunk_identity(chunk, chunk.read(source)))
                reused += done is not None
                yield shard_no, (shard_no, chunk, source), done, chunk.done
            return
        for shard_no, (names, seqs) in enumerate(read_batches(reads.path, shard_size, shard_mb)):
            done = completed(root_path, READS, shard_no, reads=len(names), first=names[0], last=names[-1])
            reused += done is not None
            yield shard_no, (shard_no, names, seqs), done, 0.0

    t0 = time.perf_counter()
    fresh = not (root_path / READS).exists()
    try:
        entries = stream_on_ray(lambda item: remote.remote(*item, root), work(), "encode", "encode-progress")
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
