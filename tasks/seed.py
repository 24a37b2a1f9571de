"""Seed tasks: the reference's minimizer index (cached on the staging folder by checksum) and
candidate reference windows for every staged shard, on Ray."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from hpc.run_folder import CANDIDATES
from tasks.genomics.seeding import ReferenceIndex, index_reference
from tasks.ingest import IngestedReference
from tasks.runtime.options import IO_TASK
from tasks.runtime.ray_cluster import ray_result, stream_on_ray
from tasks.storage.index_cache import cache_paths, load_index, save_index
from tasks.storage.shards import completed, seed_shard_file


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
        index = ray_result(ray.remote(index_reference).remote(reference.names, reference.seqs, k, w))
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
    work = ((e["shard"], e, completed(Path(root), CANDIDATES, e["shard"], reads_sha256=e["sha256"]), 0.0)
            for e in shards)
    entries = stream_on_ray(lambda e: remote.remote(e, index_ref, root, max_candidates), work, "candidates",
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
