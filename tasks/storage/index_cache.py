"""The packed genome and its minimizer index, cached on the staging folder by the reference
file's checksum, as flat files every process memory-maps.

``index/<sha256[:16]>/genome/`` is a genome folder (:mod:`hpc.genome`);
``index/<sha256[:16]>/k<k>-w<w>/`` holds ``table.bin``, ``rest.bin`` and ``positions.bin``
and, written last, ``index.json`` with the layout and each file's size and sha256. The
index task checks every sha256 once per run (:func:`load_index`): a damaged or truncated
file is reported and rebuilt. Ray workers and ranks then map the files after a size check
(:func:`open_index`), one copy in the page cache per node.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpc.files import StagingFullError, atomic_write_text, sha256_file
from hpc.genome import GENOME_JSON, GenomeError, open_genome, read_genome_json
from hpc.run_folder import genome_cache, index_cache
from tasks.genomics.index_build import build_index, build_threads
from tasks.genomics.index_layout import build_buffer_bytes, estimate_index_bytes
from tasks.genomics.reference import pack_fasta
from tasks.genomics.seeding import ReferenceIndex, default_seeding
from tasks.storage.index_progress import ProgressFile, progress_path

CACHE_VERSION = 3  # 3: canonical minimizers, keys of 2k + 1 bits
INDEX_JSON = "index.json"
ARRAYS = ("table", "rest", "positions")


class IndexMemoryError(MemoryError):
    """The reference's index would not fit in the memory there is."""


@dataclass(frozen=True)
class IndexFiles:
    """Where a cached index lives: what the Ray workers are handed instead of the index."""

    genome: str
    index: str

    @property
    def seeding(self) -> tuple[int, int]:
        """The ``(k, w)`` the index was built with."""
        body = json.loads((Path(self.index) / INDEX_JSON).read_text())
        return int(body["k"]), int(body["w"])


def resolve_seeding(staging_dir: str | Path, reference_sha256: str, k: int | None,
                    w: int | None) -> tuple[int, int] | None:
    """``(k, w)``: those given, the others by the size of the reference's packed genome when it
    is cached (:func:`~tasks.genomics.seeding.default_seeding`); None while that is unknown
    (the genome not packed yet: :func:`build_cached_index` then chooses once it is)."""
    if k is not None and w is not None:
        return k, w
    try:
        total = sum(int(n) for n in read_genome_json(genome_cache(staging_dir, reference_sha256))["lengths"])
    except (GenomeError, OSError, ValueError, KeyError):
        return None
    return default_seeding(total, k, w)


def _verify(*groups: tuple[Path, dict[str, dict]]) -> str | None:
    """Why the files, ``(folder, {name: record})`` of each group, disagree with their records,
    or None when they agree. Sizes first, then every file's sha256 on a thread of its own
    (5 GB at 3.1 Gbp)."""
    files = {folder / name: entry for folder, records in groups for name, entry in records.items()}
    for path, entry in files.items():
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != entry["bytes"]:
            return f"{path} has {path.stat().st_size} bytes, expected {entry['bytes']}"
    with ThreadPoolExecutor(max(len(files), 1)) as pool:
        digests = list(pool.map(sha256_file, files))
    for (path, entry), digest in zip(files.items(), digests):
        if digest != entry["sha256"]:
            return f"{path} does not match its sha256"
    return None


def _map(folder: Path, name: str, dtype: str, n: int) -> np.ndarray:
    path = folder / f"{name}.bin"
    if path.stat().st_size != n * np.dtype(dtype).itemsize:
        raise GenomeError(f"{path}: {path.stat().st_size} bytes, expected {n * np.dtype(dtype).itemsize}")
    return np.memmap(path, dtype=dtype, mode="r") if n else np.zeros(0, dtype=dtype)


def open_index(files: IndexFiles) -> ReferenceIndex:
    """The cached index, memory-mapped read-only, after checking every file's size."""
    genome = open_genome(files.genome)
    folder = Path(files.index)
    body = json.loads((folder / INDEX_JSON).read_text())
    table = _map(folder, "table", body["dtypes"]["table"], (1 << body["bits"]) + 1)
    rest = _map(folder, "rest", body["dtypes"]["rest"], body["minimizers"])
    positions = _map(folder, "positions", body["dtypes"]["positions"], body["minimizers"])
    return ReferenceIndex(genome, body["k"], body["w"], body["shift"], table, rest, positions, body["occ_limit"])


_OPENED: dict[IndexFiles, ReferenceIndex] = {}


def open_index_cached(files: IndexFiles) -> ReferenceIndex:
    """:func:`open_index`, once per process (a Ray worker seeds many shards with one map)."""
    if files not in _OPENED:
        _OPENED[files] = open_index(files)
    return _OPENED[files]


def load_index(staging_dir: str | Path, reference_sha256: str, k: int, w: int) -> tuple[IndexFiles | None, str]:
    """The cached index's files if every one verifies, else None; and why not."""
    files = IndexFiles(str(genome_cache(staging_dir, reference_sha256)),
                       str(index_cache(staging_dir, reference_sha256, k, w)))
    try:
        genome = read_genome_json(Path(files.genome))
        body = json.loads((Path(files.index) / INDEX_JSON).read_text())
    except (GenomeError, OSError, ValueError) as exc:
        return None, f"no complete index ({exc})"
    if body.get("version") != CACHE_VERSION or body.get("reference_sha256") != reference_sha256:
        return None, f"{files.index}: written by another version or for another reference"
    problem = _verify((Path(files.genome), genome["files"]), (Path(files.index), body["files"]))
    return (None, problem) if problem else (files, "verified")


def available_memory() -> int:
    """MemAvailable of this node, in bytes."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise OSError("/proc/meminfo has no MemAvailable")  # pragma: no cover - every Linux since 3.14 has it


def check_fits(reference: str, total: int, contigs: int, k: int, w: int, budget: int | None) -> int:
    """The index's estimated bytes and the build's buffers, after checking they fit in
    ``budget`` (default: the memory available now); :class:`IndexMemoryError` naming both
    when they do not."""
    need = estimate_index_bytes(total, contigs, k, w) + build_buffer_bytes(total, contigs, k, w, build_threads())
    have = available_memory() if budget is None else budget
    if need > have:
        gib = 2**30
        raise IndexMemoryError(
            f"reference {reference}: {total} bases in {contigs} contigs need about {need / gib:.1f} GiB for the "
            f"packed genome, its k={k}, w={w} minimizer index and the build's buffers, and {have / gib:.1f} GiB "
            f"is available ({'--index-memory-gb' if budget is not None else 'MemAvailable on this node'}); nothing was "
            "built. Use a node with more memory or a larger minimizer window (--minimizer-window)")
    return need


def build_cached_index(reference: str, local: str, staging_dir: str, reference_sha256: str, k: int | None,
                       w: int | None, budget: int | None = None) -> IndexFiles:
    """Pack the reference (unless its genome is cached and verifies), check the index fits,
    build it into memory-mapped files and write ``index.json`` last. Runs on a Ray worker;
    where it stands is in a progress file meanwhile (:func:`build_progress`).
    ``k`` or ``w`` None: chosen by the packed genome's size (:func:`resolve_seeding`)."""
    genome_dir = genome_cache(staging_dir, reference_sha256)
    genome_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(genome_dir.parent, os.O_RDONLY)  # one build of a reference at a time (no lock file)
    progress = ProgressFile(progress_path(staging_dir, reference_sha256))
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        packed = k is None or w is None
        if packed:  # the size chooses k or w
            _packed_genome(local, genome_dir, progress)
            k, w = resolve_seeding(staging_dir, reference_sha256, k, w)
        cached, _ = load_index(staging_dir, reference_sha256, k, w)  # built while we waited?
        if cached:
            return cached
        if not packed:
            _packed_genome(local, genome_dir, progress)
        return _build(reference, genome_dir, index_cache(staging_dir, reference_sha256, k, w), reference_sha256, k, w,
                      budget, progress)
    finally:
        progress.path.unlink(missing_ok=True)
        os.close(lock)


def _packed_genome(local: str, genome_dir: Path, progress: ProgressFile) -> None:
    """The reference packed into ``genome_dir``, unless it is there already and verifies."""
    progress("checking the packed genome")
    try:
        packed = read_genome_json(genome_dir)
        stale = _verify((genome_dir, packed["files"]))
    except GenomeError:
        stale = "missing"
    if stale:
        progress("packing")
        shutil.rmtree(genome_dir, ignore_errors=True)
        pack_fasta(local, genome_dir)


def _build(reference: str, genome_dir: Path, index_dir: Path, reference_sha256: str, k: int, w: int,
           budget: int | None, progress: ProgressFile) -> IndexFiles:
    """The index of the packed genome in ``genome_dir`` built into ``index_dir``."""
    genome = open_genome(genome_dir)
    progress.fields = {"k": k, "w": w, "bases": genome.total}
    check_fits(reference, genome.total, len(genome.names), k, w, budget)
    shutil.rmtree(index_dir, ignore_errors=True)
    index_dir.mkdir(parents=True)
    arrays: dict[str, np.ndarray] = {}

    def alloc(name: str, dtype, n: int) -> np.ndarray:
        """A file of the array's size, its blocks reserved first (a full disk is an error
        here, not a SIGBUS when a mapped page is written), mapped for writing."""
        path = index_dir / f"{name}.bin"
        size = n * np.dtype(dtype).itemsize
        with open(path, "wb") as fh:
            if size:
                try:
                    os.posix_fallocate(fh.fileno(), 0, size)
                except OSError as exc:
                    if exc.errno == errno.ENOSPC:
                        raise StagingFullError(errno.ENOSPC, f"{index_dir}: no space left on the device for "
                                               f"{path.name} ({size} bytes) of the reference index; free "
                                               "space there or choose another --staging-dir") from exc
                    raise
        arrays[name] = np.memmap(path, dtype=dtype, mode="r+", shape=(n,)) if n else np.zeros(0, dtype=dtype)
        return arrays[name]

    index = build_index(genome, k, w, alloc, progress=progress)
    progress("checksums")

    def record(name: str) -> dict:
        """The array's file and its checksum, read back through the page cache. The mapped
        pages are not forced to disk (``msync``: 1.7 s of 2.6 at 300 Mbp, the disk's speed):
        every reader sees the page cache, and every run checks each file's sha256 before
        it trusts the index (a file torn by a crash is rebuilt). A thread a file."""
        path = index_dir / f"{name}.bin"
        return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}

    with ThreadPoolExecutor(len(arrays)) as pool:
        files = {f"{name}.bin": entry for name, entry in zip(arrays, pool.map(record, arrays))}
    atomic_write_text(index_dir / INDEX_JSON, json.dumps({
        "version": CACHE_VERSION, "reference_sha256": reference_sha256, "k": k, "w": w, "shift": index.shift,
        "bits": int(index.table.shape[0] - 1).bit_length() - 1, "minimizers": index.size,
        "occ_limit": index.occ_limit, "dtypes": {n: str(a.dtype) for n, a in arrays.items()}, "files": files,
        "genome": hashlib.sha256((genome_dir / GENOME_JSON).read_bytes()).hexdigest(),
    }, indent=1))
    return IndexFiles(str(genome_dir), str(index_dir))
