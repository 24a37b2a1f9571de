"""Every name in a run folder, in one place: the tasks write and read them, the MPI job too.

A run folder is ``<staging_dir>/run-<key>/``::

    manifest.json                 written last by the stage task: its presence marks staging complete
    reference/                    the packed genome (hard links to the index cache's copy)
    reads/shard_NNNNN.npz         encoded read shards (+ ``.done.json`` completion records)
    candidates/shard_NNNNN.npz    candidate windows per shard (+ ``.done.json``)
    .owner.lock                   flock-ed by the flow that owns the folder (pid, host, since)
    align/rank_NNNN-A.npz         each rank's alignments in attempt A, ``rank_NNNN-A.done.json`` its marker
    align/job-A.done.json         written by rank 0 once every rank of attempt A has its marker
    align/job.json                the job the current attempt submitted (id, backend, process group)
    align/job[_N].out, .err       the job's stdout and stderr (``_N``: a job array's task)
    results/                      outputs bound for S3, before upload

Beside the run folders: ``inputs/<bucket>/<key>`` (S3 downloads) and the reference index
cache, ``index/<sha256[:16]>/genome/`` (the packed genome) and ``index/<sha256[:16]>/k<k>-w<w>/``
(its minimizer index), keyed by the reference file's checksum.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
REFERENCE = "reference"
READS = "reads"
CANDIDATES = "candidates"
ALIGN = "align"
RESULTS = "results"
RECORD_SUFFIX = ".done.json"
JOB_RECORD = "job.json"
OWNER_LOCK = ".owner.lock"
INPUTS = "inputs"
INDEX = "index"
RUN_PREFIX = "run-"

# What a previous attempt of the align job leaves behind, cleared before the next one starts.
# Each attempt's files carry its token, so a rank of an earlier attempt that is still running
# (its flow was killed) can only write files the current attempt never reads.
ALIGN_LEFTOVERS = ("rank_*.npz", f"rank_*{RECORD_SUFFIX}", f"job*{RECORD_SUFFIX}", "job*.out", "job*.err")


def run_folder(staging_dir: str | Path, key: str) -> Path:
    return Path(staging_dir).resolve() / f"{RUN_PREFIX}{key}"


def shard_path(root: Path, kind: str, shard_no: int) -> Path:
    """``<root>/<kind>/shard_NNNNN.npz``; ``kind`` is :data:`READS` or :data:`CANDIDATES`."""
    return Path(root) / kind / f"shard_{shard_no:05d}.npz"


def record_path(path: Path) -> Path:
    """The completion record beside a staged file."""
    return path.with_name(path.name + RECORD_SUFFIX)


def align_dir(root: Path) -> Path:
    return Path(root) / ALIGN


def rank_output(out_dir: Path, rank: int, attempt: str = "0") -> Path:
    return Path(out_dir) / f"rank_{rank:04d}-{attempt}.npz"


def rank_marker(out_dir: Path, rank: int, attempt: str = "0") -> Path:
    return Path(out_dir) / f"rank_{rank:04d}-{attempt}{RECORD_SUFFIX}"


def rank_markers(out_dir: Path) -> list[Path]:
    return sorted(Path(out_dir).glob(f"rank_*{RECORD_SUFFIX}"))


def job_marker(out_dir: Path, attempt: str = "0") -> Path:
    return Path(out_dir) / f"job-{attempt}{RECORD_SUFFIX}"


def job_record(out_dir: Path) -> Path:
    return Path(out_dir) / JOB_RECORD


def owner_lock(root: Path) -> Path:
    return Path(root) / OWNER_LOCK


def job_logs(out_dir: Path, array: bool = False) -> tuple[Path, Path]:
    """(stdout, stderr) of the job; a job array's tasks get one pair each (``%a``, Slurm's task id)."""
    suffix = "_%a" if array else ""
    return Path(out_dir) / f"job{suffix}.out", Path(out_dir) / f"job{suffix}.err"


def job_errors(out_dir: Path) -> list[Path]:
    return sorted(Path(out_dir).glob("job*.err"))


def job_outputs(out_dir: Path) -> list[Path]:
    return sorted(Path(out_dir).glob("job*.out"))


def clear_align_dir(out_dir: Path) -> None:
    for pattern in ALIGN_LEFTOVERS:
        for old in Path(out_dir).glob(pattern):
            old.unlink()


def inputs_dir(staging_dir: str | Path, bucket: str) -> Path:
    return Path(staging_dir).resolve() / INPUTS / bucket


def genome_cache(staging_dir: str | Path, reference_sha256: str) -> Path:
    return Path(staging_dir).resolve() / INDEX / reference_sha256[:16] / "genome"


def index_cache(staging_dir: str | Path, reference_sha256: str, k: int, w: int) -> Path:
    return Path(staging_dir).resolve() / INDEX / reference_sha256[:16] / f"k{k}-w{w}"


@dataclass(frozen=True)
class AlignOutputs:
    """Where one attempt of the align job left its rank outputs: what collect reads."""

    dir: Path
    attempt: str
    ranks: int

    def output(self, rank: int) -> Path:
        return rank_output(self.dir, rank, self.attempt)

    def marker(self, rank: int) -> Path:
        return rank_marker(self.dir, rank, self.attempt)
