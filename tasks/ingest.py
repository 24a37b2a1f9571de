"""Ingest tasks: locate and checksum the reads and the reference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from hpc.files import sha256_file
from tasks.genomics.fastx import FastxFormatError
from tasks.runtime.options import IO_TASK
from tasks.storage.s3 import S3Settings, fetch


@dataclass
class ReadsInput:
    uri: str
    path: Path  # local (an S3 object's copy on the staging folder)
    sha256: str
    bytes: int


@dataclass
class IngestedReference:
    uri: str
    path: Path  # local (an S3 object's copy on the staging folder)
    sha256: str
    bytes: int


@task(name="ingest-reads", **IO_TASK)
def ingest_reads(uri: str, staging_dir: str = ".helixflow/fsx", s3: S3Settings | None = None) -> ReadsInput:
    """Locate the reads (an ``s3://`` object is first copied under ``<staging_dir>/inputs/``)
    and checksum them; parsing and validation stream through the encode stage."""
    path = fetch(uri, staging_dir, s3)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    if path.is_dir():
        raise FastxFormatError(path, None, "is a directory, expected a FASTA/FASTQ file")
    reads = ReadsInput(str(uri), path, sha256_file(path), path.stat().st_size)
    get_run_logger().info("reads: %s (%d bytes, sha256 %s)", uri, reads.bytes, reads.sha256[:16])
    create_table_artifact(
        key="ingest-reads",
        table=[{"file": str(uri), "local": str(path), "bytes": reads.bytes, "sha256": reads.sha256[:16]}],
        description="Reads located and checksummed",
    )
    return reads


@task(name="ingest-reference", **IO_TASK)
def ingest_reference(uri: str, staging_dir: str = ".helixflow/fsx", s3: S3Settings | None = None) -> IngestedReference:
    """Locate the reference FASTA (an ``s3://`` object is first copied to the staging folder)
    and checksum it; it is parsed, validated and packed once per checksum by the index task."""
    path = fetch(uri, staging_dir, s3)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    if path.is_dir():
        raise FastxFormatError(path, None, "is a directory, expected a FASTA file")
    ref = IngestedReference(str(uri), path, sha256_file(path), path.stat().st_size)
    get_run_logger().info("reference: %s (%d bytes, sha256 %s)", uri, ref.bytes, ref.sha256[:16])
    create_table_artifact(
        key="ingest-reference",
        table=[{"file": str(uri), "local": str(path), "bytes": ref.bytes, "sha256": ref.sha256[:16]}],
        description="Reference located and checksummed",
    )
    return ref


def require_qualities(reads: ReadsInput) -> None:
    """A BAM run needs base qualities: FASTA reads are refused here, before anything is
    encoded, naming the file and the line of the first record."""
    from tasks.genomics.fastx import open_maybe_gzip

    with open_maybe_gzip(reads.path) as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                break
        else:
            return  # empty: the encoder says so
    if line.lstrip().startswith(b">"):
        raise FastxFormatError(reads.path, number, "FASTA records carry no base qualities, and a BAM needs them; "
                               "give FASTQ reads, or set bam false (PAF only)")
