"""Ray stage: stream reads into encoded shards on the staging folder (exact decode check),
index the reference, seed every shard. Shards completed by an earlier run are reused."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact

# The functions Ray runs live in modules without Prefect, so workers start without importing it.
from tasks.encoding import DecodeCheckError  # noqa: F401 - re-exported
from hpc.manifest import MANIFEST_NAME
from tasks.fastq_chunks import chunk_identity, chunks, is_fastq
from tasks.fastx import FastxFormatError
from tasks.index_cache import cache_paths, load_index, save_index
from tasks.ingest import IngestedReference, ReadsInput
from tasks.seeding import ReferenceIndex, index_reference
from tasks.shard_store import (clean_temp_files, completed, encode_chunk_file, encode_shard_file, has_record,
                               read_batches, seed_shard_file)
from tasks.task_options import IO_TASK


PROGRESS_EVERY_S = 2.0  # the progress artifact is updated at most this often (and at the end)


def _stream(submit, work, label: str, key: str, total: int | None = None) -> dict[int, dict]:
    """Run ``submit(item)`` on Ray for each (shard_no, item, reused_entry, fraction) from
    ``work``, keeping at most twice the cluster's CPUs in flight; reused entries skip Ray.
    Progress (a Prefect progress artifact, at most every ``PROGRESS_EVERY_S``) is shards done out of
    ``total`` when that is known, else the fraction of the input read for the last shard
    done. Logs reads/s and MB/s as shards finish. Returns entries by shard number."""
    import ray

    logger = get_run_logger()
    progress_id = create_progress_artifact(progress=0.0, key=key, description=f"{label}: % of the input done")
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    pending: dict = {}
    entries: dict[int, dict] = {}
    t0 = last_update = time.perf_counter()
    reads = size = 0
    shown = 0.0

    def finished(refs) -> None:
        nonlocal reads, size, last_update, shown
        for ref in refs:
            shard_no, fraction = pending.pop(ref)
            entry = ray.get(ref)
            entries[shard_no] = entry
            reads += entry.get("reads", 0)
            size += entry.get("chunk_bytes", 0)
            shown = max(shown, 100.0 * (len(entries) / total if total else fraction))
        now = time.perf_counter()
        if now - last_update >= PROGRESS_EVERY_S:
            update_progress_artifact(progress_id, progress=round(min(shown, 99.9), 1))
            last_update = now
        if reads and len(entries) % 10 == 0:
            seconds = now - t0
            logger.info("%s: %d shards, %d reads, %.0f reads/s%s (%.0f%%)", label, len(entries), reads,
                        reads / seconds, f", {size / seconds / 2**20:.1f} MB/s" if size else "", shown)

    try:
        for shard_no, item, reused, fraction in work:
            if reused is not None:
                entries[shard_no] = {**reused, "reused": True}
                reads += reused.get("reads", 0)
                continue
            while len(pending) >= window:
                ready, _ = ray.wait(list(pending), num_returns=1)
                finished(ready)
            pending[submit(item)] = (shard_no, fraction)
    except BaseException:
        ray.wait(list(pending), num_returns=len(pending))  # let shards in flight land before the caller cleans up
        raise
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        finished(ready)
    update_progress_artifact(progress_id, progress=100.0)
    return entries


@task(name="encode-reads", **IO_TASK)
def encode_reads(reads: ReadsInput, root: str, shard_size: int, shard_mb: float = 64.0) -> list[dict]:
    """Stream the reads file into shards of ``shard_size`` reads (or ``shard_mb`` MiB of bases);
    each shard is encoded, decode-checked and written to ``<root>/reads/`` by a Ray worker.
    The driver holds one batch being parsed plus the shards in flight. Shards that a
    previous run of the same inputs completed are reused."""
    import ray

    root_path = Path(root)
    (root_path / MANIFEST_NAME).unlink(missing_ok=True)  # not complete until the stage task writes it again
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
                if has_record(root_path, "reads", shard_no):
                    done = completed(root_path, "reads", shard_no, **chunk_identity(chunk, chunk.read(source)))
                reused += done is not None
                yield shard_no, (shard_no, chunk, source), done, chunk.done
            return
        for shard_no, (names, seqs) in enumerate(read_batches(reads.path, shard_size, shard_mb)):
            done = completed(root_path, "reads", shard_no, reads=len(names), first=names[0], last=names[-1])
            reused += done is not None
            yield shard_no, (shard_no, names, seqs), done, 0.0

    t0 = time.perf_counter()
    fresh = not (root_path / "reads").exists()
    try:
        entries = _stream(lambda item: remote.remote(*item, root), work(), "encode", "encode-progress")
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


@task(name="index-reference", **IO_TASK)
def build_reference_index(reference: IngestedReference, k: int, w: int = 1,
                          staging_dir: str | None = None) -> ReferenceIndex:
    """The (w,k)-minimizer index: from the staging folder's cache when this reference
    (by checksum) was indexed with the same k and w before, else built on Ray and cached."""
    import ray

    t0 = time.perf_counter()
    index = load_index(staging_dir, reference.sha256, k, w) if staging_dir else None
    source = "cache"
    if index is None:
        index = ray.get(ray.remote(index_reference).remote(reference.names, reference.seqs, k, w))
        source = "built"
        if staging_dir:
            save_index(staging_dir, reference.sha256, index)
    where = str(cache_paths(staging_dir, reference.sha256, k, w)[0]) if staging_dir else "not cached"
    get_run_logger().info("reference index %s in %.2f s (%s)", source, time.perf_counter() - t0, where)
    create_table_artifact(
        key="reference-index",
        table=[{"contigs": len(index.names), "bases": int(index.lengths.sum()), "k": k, "w": w,
                "minimizers": int(index.kmers.shape[0]), "source": source, "cache": where}],
        description="Reference (w,k)-minimizer index",
    )
    return index


@task(name="candidate-windows", **IO_TASK)
def candidate_windows(index: ReferenceIndex, root: str, shards: list[dict], max_candidates: int) -> list[dict]:
    """Seed every staged shard on Ray (the index goes to the object store once); each worker
    reads its shard from the staging folder and writes the candidates beside it."""
    import ray

    index_ref = ray.put(index)
    remote = ray.remote(seed_shard_file)
    work = ((e["shard"], e, completed(Path(root), "candidates", e["shard"], reads_sha256=e["sha256"]), 0.0)
            for e in shards)
    entries = _stream(lambda e: remote.remote(e, index_ref, root, max_candidates), work, "candidates",
                      "candidates-progress", total=len(shards))
    cands = [entries[e["shard"]] for e in shards]
    n_reads = sum(e["reads"] for e in shards)
    seeded = sum(c["seeded"] for c in cands)
    create_table_artifact(
        key="candidate-windows",
        table=[{"reads": n_reads, "reads_with_candidates": seeded, "unseeded": n_reads - seeded,
                "windows": sum(c["windows"] for c in cands), "reused": sum(bool(c.get("reused")) for c in cands)}],
        description="Candidate reference windows per read (both strands)",
    )
    return cands
