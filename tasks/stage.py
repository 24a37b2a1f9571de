"""Stage task: shards, reference, candidates and a checksummed manifest onto the FSx folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from hpc.codec import pack_codes
from hpc.manifest import file_entry, save_npz_atomic, write_manifest
from tasks.encoding import EncodedShard
from tasks.ingest import IngestedReads, IngestedReference
from tasks.seeding import Candidates, ReferenceIndex
from tasks.task_options import IO_TASK


def run_key(reads_sha256: str, reference_sha256: str, settings: dict) -> str:
    """Folder key for a run: the inputs' checksums plus every setting that changes staged bytes."""
    blob = json.dumps({"reads": reads_sha256, "reference": reference_sha256, **settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_staging(
    root: Path,
    inputs: dict,
    index: ReferenceIndex,
    shards: list[EncodedShard],
    candidates: list[Candidates],
    settings: dict,
) -> tuple[Path, list[dict]]:
    """Write every file to a temp name and rename it; the manifest goes last."""
    packed, nmask = pack_codes(index.codes)
    ref_path = root / "reference.npz"
    save_npz_atomic(ref_path, names=np.array(index.names, dtype=np.str_),
                    lengths=index.lengths, starts=index.starts, packed=packed, nmask=nmask)
    entries = []
    for i, (shard, cands) in enumerate(zip(shards, candidates)):
        shard_path = root / "reads" / f"shard_{i:05d}.npz"
        cand_path = root / "candidates" / f"shard_{i:05d}.npz"
        save_npz_atomic(shard_path, **shard.to_arrays())
        save_npz_atomic(cand_path, **cands.to_arrays())
        entries.append(file_entry(root, shard_path, reads=shard.n_reads, bases=shard.n_bases,
                                  candidates=file_entry(root, cand_path, windows=len(cands))))
    manifest = write_manifest(root, {
        "run_key": root.name,
        "inputs": inputs,
        "settings": settings,
        "scoring": settings["scoring"],
        "reference": file_entry(root, ref_path, contigs=len(index.names)),
        "shards": entries,
    })
    return manifest, entries


@task(name="stage", **IO_TASK)
def stage_run(
    staging_dir: str,
    reads: IngestedReads,
    reference: IngestedReference,
    index: ReferenceIndex,
    shards: list[EncodedShard],
    candidates: list[Candidates],
    settings: dict,
) -> Path:
    """Stage under ``<staging_dir>/run-<key>``, the key made from input checksums and settings."""
    root = Path(staging_dir).resolve() / f"run-{run_key(reads.sha256, reference.sha256, settings)}"
    inputs = {"reads": {"uri": reads.uri, "sha256": reads.sha256},
              "reference": {"uri": reference.uri, "sha256": reference.sha256}}
    manifest, entries = write_staging(root, inputs, index, shards, candidates, settings)
    total = sum(e["bytes"] + e["candidates"]["bytes"] for e in entries)
    get_run_logger().info("staged %d shards (%d bytes) under %s", len(entries), total, root)
    create_table_artifact(
        key="stage-files",
        table=[{"file": e["path"], "bytes": e["bytes"], "reads": e["reads"], "sha256": e["sha256"][:16]}
               for e in entries],
        description=f"Staged shards under {root}",
    )
    create_markdown_artifact(
        key="stage-manifest",
        markdown=f"### Staging\n\n- folder: `{root}`\n- manifest: [{manifest.name}]({manifest.as_uri()})\n"
                 f"- shards: {len(entries)}, {total} bytes with candidates\n",
        description="Staging manifest",
    )
    return manifest
