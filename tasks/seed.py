"""Seed tasks: the reference's packed genome and minimizer index (files cached on the staging
folder by checksum) and candidate reference windows for every staged shard, on Ray."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact

from hpc.genome import read_genome_json
from hpc.run_folder import CANDIDATES
from tasks.ingest import IngestedReference
from tasks.runtime.options import IO_TASK
from tasks.runtime.ray_cluster import ray_result, stream_on_ray
from tasks.storage.index_cache import IndexFiles, build_cached_index, load_index, open_index, resolve_seeding
from tasks.storage.index_progress import build_progress, build_step_line
from tasks.storage.shards import completed, seed_shard_file

GIB = 2**30
# A reference up to this size (a bacterium, a yeast) is indexed in the flow's own process, in
# about a second, while the Ray workers are still warming up; a larger one on a Ray worker.
IN_PROCESS_INDEX_BYTES = 32 * 2**20
BUILD_LOG_EVERY_S = 30.0  # while an index is built on Ray, where it stands is logged this often


def require_bam_contigs(files: IndexFiles) -> None:
    """A BAM run fails here, before any read is encoded, when a contig is too long for the
    BAI index collect writes (:func:`tasks.genomics.bam.bai_refusal`)."""
    from tasks.genomics.bam import BamWriteError, bai_refusal

    contigs = read_genome_json(files.genome)
    why = bai_refusal(contigs["names"], contigs["lengths"])
    if why:
        raise BamWriteError(f"reference {files.genome}: {why}")


@task(name="index-reference", **IO_TASK)
def build_reference_index(reference: IngestedReference, k: int | None, w: int | None, staging_dir: str,
                          memory_gb: float | None = None) -> IndexFiles:
    """The packed genome and its (w,k)-minimizer index as files on the staging folder: the
    cached ones when this reference (by checksum) was indexed with the same k and w before
    and every file verifies, else packed and built (after checking the index fits in
    ``memory_gb``, default the node's available memory) and cached: on a Ray worker, or here
    for a reference of at most :data:`IN_PROCESS_INDEX_BYTES`. ``k`` or ``w`` None: chosen by
    the reference's size (:func:`~tasks.genomics.seeding.default_seeding`)."""
    import ray

    t0 = time.perf_counter()
    seeding = resolve_seeding(staging_dir, reference.sha256, k, w)
    files, why = load_index(staging_dir, reference.sha256, *seeding) if seeding else (None, "no complete index")
    source = "cache"
    if files is None:
        logger = get_run_logger()
        if "no complete index" not in why:
            logger.warning("reference index not reused: %s; building it again", why)
        budget = int(memory_gb * GIB) if memory_gb else None
        args = (reference.uri, str(reference.path), staging_dir, reference.sha256, *(seeding or (k, w)), budget)
        if reference.bytes <= IN_PROCESS_INDEX_BYTES:
            files = build_cached_index(*args)
        else:
            files = _wait_for_build(ray.remote(num_cpus=1)(build_cached_index).remote(*args), staging_dir,
                                    reference.sha256, t0)
        source = "built"
    index = open_index(files)
    k, w = index.k, index.w
    seconds = time.perf_counter() - t0
    get_run_logger().info("reference index %s in %.2f s: %d contigs, %d bases, %d minimizers (k=%d, w=%d, "
                          "masked above %d occurrences) in %s", source, seconds, len(index.names),
                          index.genome.total, index.size, k, w, index.occ_limit, files.index)
    contigs = read_genome_json(files.genome)
    create_table_artifact(
        key="reference-index",
        table=[{"contigs": len(index.names), "bases": index.genome.total, "k": k, "w": w,
                "minimizers": index.size, "masked_above": index.occ_limit, "source": source,
                "seconds": round(seconds, 2), "cache": files.index}],
        description="Reference (w,k)-minimizer index",
    )
    create_table_artifact(
        key="reference-contigs",
        table=[{"contig": n, "length": n_bases} for n, n_bases in
               list(zip(contigs["names"], contigs["lengths"]))[:1000]],
        description=f"Reference {reference.uri}: {len(contigs['names'])} contigs (the first 1,000 listed)",
    )
    return files


def _wait_for_build(ref, staging_dir: str, reference_sha256: str, t0: float) -> IndexFiles:
    """The build's result, logging where it stands every :data:`BUILD_LOG_EVERY_S` seconds
    and showing it as a progress artifact (a human genome's index takes minutes)."""
    import ray

    logger = get_run_logger()
    progress_id = create_progress_artifact(progress=0.0, key="index-progress",
                                           description="reference index: % of the build done")
    while not ray.wait([ref], timeout=BUILD_LOG_EVERY_S)[0]:
        where = build_progress(staging_dir, reference_sha256)
        if where is None:
            continue
        line, share = build_step_line(where)
        logger.info("reference index: %s, %.0f s so far", line, time.perf_counter() - t0)
        update_progress_artifact(progress_id, progress=share)
    files = ray_result(ref)
    update_progress_artifact(progress_id, progress=100.0)
    return files


@task(name="candidate-windows", **IO_TASK)
def candidate_windows(index: IndexFiles, root: str, shards: list[dict], max_candidates: int) -> list[dict]:
    """Seed every staged shard on Ray; each worker memory-maps the index files (once per
    worker), reads its shard from the staging folder and writes the candidates beside it."""
    import ray

    remote = ray.remote(seed_shard_file)
    work = ((e["shard"], e, completed(Path(root), CANDIDATES, e["shard"], reads_sha256=e["sha256"]), 0.0)
            for e in shards)
    entries = stream_on_ray(lambda e: remote.remote(e, index, root, max_candidates), work, "candidates",
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
