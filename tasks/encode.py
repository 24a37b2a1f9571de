"""Ray stage: encode read shards (with an exact decode check), index the reference, seed."""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact

# The functions Ray runs live in modules without Prefect, so workers start without importing it.
from tasks.encoding import DecodeCheckError, EncodedShard, encode_and_check  # noqa: F401 - re-exported
from tasks.index_cache import cache_paths, load_index, save_index
from tasks.ingest import IngestedReads, IngestedReference
from tasks.seeding import Candidates, ReferenceIndex, find_candidates, index_reference
from tasks.task_options import IO_TASK


def _gather(refs: list, label: str, key: str) -> list:
    """Wait for Ray object refs in order, updating a progress artifact as they finish."""
    import ray

    progress_id = create_progress_artifact(progress=0.0, key=key, description=f"{label}: shards done")
    pending = list(refs)
    done = 0
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        done += len(ready)
        update_progress_artifact(progress_id, progress=100.0 * done / len(refs))
    return ray.get(refs)


@task(name="encode-reads", **IO_TASK)
def encode_reads(reads: IngestedReads) -> list[EncodedShard]:
    """One Ray task per shard: 2-bit pack + N mask, then decode and compare every read."""
    import ray

    t0 = time.perf_counter()
    remote = ray.remote(encode_and_check)
    refs = [remote.remote(i, b.names, b.seqs) for i, b in enumerate(reads.batches)]
    shards = _gather(refs, "encode", "encode-progress")
    seconds = time.perf_counter() - t0
    packed = sum(s.packed.nbytes + s.nmask.nbytes for s in shards)
    mb_s = reads.n_bases / seconds / 1e6 if seconds > 0 else 0.0
    get_run_logger().info("encoded %d shards, %d reads at %.1f reads/s, %.1f MB/s of bases",
                          len(shards), reads.n_reads, reads.n_reads / seconds, mb_s)
    create_table_artifact(
        key="encode-summary",
        table=[{"shards": len(shards), "reads": reads.n_reads, "bases": reads.n_bases,
                "packed_bytes": packed, "seconds": round(seconds, 3), "mb_per_s": round(mb_s, 2),
                "decode_check": "exact"}],
        description="Encode/decode on Ray",
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
def candidate_windows(index: ReferenceIndex, shards: list[EncodedShard], max_candidates: int) -> list[Candidates]:
    """Seed every shard against the index on Ray; the index is put in the object store once."""
    import ray

    index_ref = ray.put(index)
    remote = ray.remote(find_candidates)
    refs = [remote.remote(index_ref, s, max_candidates=max_candidates) for s in shards]
    cands = _gather(refs, "candidates", "candidates-progress")
    n_reads = sum(s.n_reads for s in shards)
    seeded = sum(len(set(c.read.tolist())) for c in cands)
    create_table_artifact(
        key="candidate-windows",
        table=[{"reads": n_reads, "reads_with_candidates": seeded, "unseeded": n_reads - seeded,
                "windows": sum(len(c) for c in cands)}],
        description="Candidate reference windows per read (both strands)",
    )
    return cands
