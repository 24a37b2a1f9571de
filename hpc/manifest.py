"""The staging manifest: every staged file with its size and sha256, written by the stage task
and verified by every reader (the MPI job, collect)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from hpc.files import atomic_write_text, sha256_file
from hpc.kernels.scoring import Scoring
from hpc.run_folder import MANIFEST

MANIFEST_VERSION = 1


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Every setting that changes what is staged or how it is aligned. The run folder's key
    hashes it with the inputs' checksums; the manifest carries it once, under ``settings``,
    and the MPI job and collect read it from there."""

    shard_size: int = 5000
    shard_mb: float = 64.0
    kmer: int = 15
    minimizer_window: int = 5
    max_candidates: int = 3
    max_secondary: int = 5
    min_score: int = 60  # the least alignment score reported (hpc.kernels.batch.score_floor)
    scoring: Scoring = Scoring()
    qualities: bool = True  # base qualities kept in the shards (FASTQ) and written to SAM/BAM

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "RunSettings":
        return cls(**{**body, "scoring": Scoring(**body["scoring"])})


class ManifestError(RuntimeError):
    """The staging manifest is missing, malformed, or disagrees with the files on disk."""


def file_entry(root: Path, path: Path, sha256: str | None = None, **extra: Any) -> dict[str, Any]:
    """Manifest row for one staged file: name relative to the staging folder, size, sha256
    (``sha256``: already known from the bytes just written; else read back)."""
    path = Path(path)
    return {
        "path": str(path.relative_to(root)),
        "bytes": path.stat().st_size,
        "sha256": sha256 or sha256_file(path),
        **extra,
    }


def write_manifest(root: Path, body: dict[str, Any]) -> Path:
    path = Path(root) / MANIFEST
    atomic_write_text(path, json.dumps({"version": MANIFEST_VERSION, **body}, indent=2))
    return path


@dataclasses.dataclass(frozen=True)
class StagedRun:
    """What the stage task hands on: the manifest, its sha256 as written, and how many reads
    the encoder wrote into the shards it lists. The align job and collect check all three, so
    a manifest edited or swapped after staging fails the run instead of losing reads."""

    manifest: Path
    sha256: str
    reads: int

    def verify(self) -> dict[str, Any]:
        """The manifest, after checking it is the one staged and lists every read."""
        return load_manifest(self.manifest, sha256=self.sha256, reads=self.reads)


def manifest_settings(manifest: dict[str, Any]) -> RunSettings:
    return RunSettings.from_json(manifest["settings"])


def load_manifest(path: Path, sha256: str | None = None, reads: int | None = None) -> dict[str, Any]:
    """The manifest at ``path``; with ``sha256``, only if it is byte for byte the one staged;
    with ``reads``, only if its shards hold that many reads."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    data = path.read_bytes()  # hashed and parsed from the same bytes
    if sha256 is not None and (digest := hashlib.sha256(data).hexdigest()) != sha256:
        raise ManifestError(f"{path}: changed after staging (sha256 {digest[:16]}, staged {sha256[:16]}); "
                            "nothing was aligned from it; run the flow again to stage afresh")
    try:
        manifest = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from exc
    if manifest.get("version") != MANIFEST_VERSION:
        raise ManifestError(
            f"{path}: field 'version' is {manifest.get('version')!r}, expected {MANIFEST_VERSION}"
        )
    if reads is not None and (listed := sum(int(s.get("reads", 0)) for s in manifest.get("shards", []))) != reads:
        raise ManifestError(f"{path}: lists {listed} reads in {len(manifest.get('shards', []))} shards, but "
                            f"{reads} were encoded; a shard is missing from it")
    return manifest


def verify_entry(root: Path, entry: dict[str, Any]) -> Path:
    """Check one staged file against its manifest row; return its path."""
    path = Path(root) / entry["path"]
    if not path.is_file():
        raise ManifestError(f"{path}: listed in the manifest but missing")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise ManifestError(f"{path}: {size} bytes on disk, manifest says {entry['bytes']}")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise ManifestError(f"{path}: sha256 {digest} does not match manifest {entry['sha256']}")
    return path


def load_npz_verified(root: Path, entry: dict[str, Any], keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Arrays of a staged .npz file, after checking it against its manifest row: every one,
    or those of ``keys`` that it holds (the others are not read)."""
    with np.load(verify_entry(root, entry), allow_pickle=False) as data:
        return {k: data[k] for k in data.files if keys is None or k in keys}
