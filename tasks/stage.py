"""Stage task: the packed genome and a checksummed manifest complete the run folder on FSx
(the shards and candidates were written there by the Ray stage)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from hpc.files import save_npz_atomic, sha256_file
from hpc.genome import GENOME_JSON, link_genome, read_genome_json, save_genome
from hpc.manifest import RunSettings, StagedRun, file_entry, load_manifest, write_manifest
from hpc.run_folder import CANDIDATES, READS, REFERENCE, run_folder, shard_path
from tasks.genomics.encoding import EncodedShard
from tasks.genomics.seeding import Candidates, ReferenceIndex
from tasks.ingest import IngestedReference, ReadsInput
from tasks.runtime.options import IO_TASK
from tasks.storage.index_cache import IndexFiles


def run_key(reads_sha256: str, reference_sha256: str, settings: RunSettings) -> str:
    """Folder key for a run: the inputs' checksums plus every setting that changes staged bytes."""
    blob = json.dumps({"reads": reads_sha256, "reference": reference_sha256, **settings.to_json()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def pair_key(mate1_sha256: str, mate2_sha256: str | None) -> str:
    """The reads' identity of a pair (two files, or one interleaved file: ``mate2`` None)."""
    return hashlib.sha256(f"pairs:{mate1_sha256}:{mate2_sha256 or 'interleaved'}".encode()).hexdigest()


def run_root(staging_dir: str, reads_sha256: str, reference_sha256: str, settings: RunSettings) -> Path:
    return run_folder(staging_dir, run_key(reads_sha256, reference_sha256, settings))


def finish_staging(root: Path, inputs: dict, shards: list[dict], candidates: list[dict],
                   settings: RunSettings) -> Path:
    """Write the manifest (last: its presence marks the staging complete); the genome is
    already in ``root/reference``."""
    genome = root / REFERENCE / GENOME_JSON
    keep = ("path", "bytes", "sha256", "reads", "bases", "windows", "cells", "mates")
    entries = [{**{k: e[k] for k in keep if k in e}, "candidates": {k: c[k] for k in keep if k in c}}
               for e, c in zip(shards, candidates)]
    return write_manifest(root, {
        "run_key": root.name,
        "inputs": inputs,
        "settings": settings.to_json(),
        "reference": file_entry(root, genome, contigs=len(read_genome_json(genome.parent)["names"])),
        "shards": entries,
    })


def write_staging(
    root: Path,
    inputs: dict,
    index: ReferenceIndex,
    shards: list[EncodedShard],
    candidates: list[Candidates],
    settings: RunSettings,
    genome_folder: Path | None = None,
) -> tuple[Path, list[dict]]:
    """Stage in-memory shards (benchmarks, tests): every file to a temp name and renamed;
    the manifest goes last. The genome is written from the index, or linked from
    ``genome_folder`` (an index cache's) when given."""
    shard_entries, cand_entries = [], []
    for i, (shard, cands) in enumerate(zip(shards, candidates)):
        reads_path, cand_path = shard_path(root, READS, i), shard_path(root, CANDIDATES, i)
        save_npz_atomic(reads_path, **shard.to_arrays())
        save_npz_atomic(cand_path, **cands.to_arrays())
        shard_entries.append(file_entry(root, reads_path, reads=shard.n_reads, bases=shard.n_bases, mates=shard.mates))
        cand_entries.append(file_entry(root, cand_path, windows=len(cands), cells=cands.cells))
    if genome_folder:
        link_genome(genome_folder, root / REFERENCE)
    else:
        save_genome(root / REFERENCE, index.genome)
    manifest = finish_staging(root, inputs, shard_entries, cand_entries, settings)
    return manifest, load_manifest(manifest)["shards"]


@task(name="stage", **IO_TASK)
def stage_run(
    root: str,
    reads: ReadsInput,
    reference: IngestedReference,
    index: IndexFiles,
    shards: list[dict],
    candidates: list[dict],
    settings: RunSettings,
    mate2: ReadsInput | None = None,
) -> StagedRun:
    """Complete the staging folder ``root`` (shards and candidates are already there): the
    genome (linked from the index cache), then the manifest with every file's size and
    sha256. Returns the manifest with its own sha256 and the encoder's read count, which the
    align job and collect check."""
    root_path = Path(root)
    inputs = {"reads": {"uri": reads.uri, "sha256": reads.sha256},
              "reference": {"uri": reference.uri, "sha256": reference.sha256}}
    if mate2 is not None:
        inputs["reads2"] = {"uri": mate2.uri, "sha256": mate2.sha256}
    link_genome(index.genome, root_path / REFERENCE)  # hard links: no copy of the genome
    manifest = finish_staging(root_path, inputs, shards, candidates, settings)
    staged = StagedRun(manifest, sha256_file(manifest), sum(int(e["reads"]) for e in shards))
    entries = staged.verify()["shards"]
    total = sum(e["bytes"] + e["candidates"]["bytes"] for e in entries)
    reused = sum(bool(e.get("reused")) for e in shards)
    get_run_logger().info("staged %d shards (%d bytes, %d reused from an earlier run) under %s",
                          len(entries), total, reused, root_path)
    create_table_artifact(
        key="stage-files",
        table=[{"file": e["path"], "bytes": e["bytes"], "reads": e["reads"], "sha256": e["sha256"][:16],
                "reused": bool(s.get("reused"))} for e, s in zip(entries, shards)],
        description=f"Staged shards under {root_path}",
    )
    create_markdown_artifact(
        key="stage-manifest",
        markdown=f"### Staging\n\n- folder: `{root_path}`\n- manifest: [{manifest.name}]({manifest.as_uri()})\n"
                 f"- shards: {len(entries)} ({reused} reused), {total} bytes with candidates\n",
        description="Staging manifest",
    )
    return staged


@task(name="stage-reads", **IO_TASK)
def stage_reads(root: str, reads: ReadsInput, shards: list[dict]) -> Path:
    """A manifest of the read shards alone (the data-plane benchmark stops here)."""
    keep = ("path", "bytes", "sha256", "reads", "bases")
    return write_manifest(Path(root), {"run_key": Path(root).name,
                                       "inputs": {"reads": {"uri": reads.uri, "sha256": reads.sha256}},
                                       "shards": [{k: e[k] for k in keep} for e in shards]})
