"""Ingest tasks: read and validate reads and reference, count, checksum, report."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from hpc.manifest import sha256_file
from tasks.fastx import FastxFormatError, read_fastx
from tasks.storage import S3Settings, fetch
from tasks.task_options import IO_TASK


@dataclass
class ReadBatch:
    names: list[str] = field(default_factory=list)
    seqs: list[bytes] = field(default_factory=list)


@dataclass
class IngestedReads:
    uri: str
    sha256: str
    batches: list[ReadBatch]
    n_reads: int
    n_bases: int
    lengths: np.ndarray


@dataclass
class IngestedReference:
    uri: str
    sha256: str
    names: list[str]
    seqs: list[bytes]


def length_histogram(lengths: np.ndarray, bins: int = 10) -> list[dict]:
    counts, edges = np.histogram(lengths, bins=min(bins, max(1, int(np.ptp(lengths)) + 1)))
    return [{"from": int(edges[i]), "to": int(edges[i + 1]), "reads": int(c)} for i, c in enumerate(counts)]


@task(name="ingest-reads", **IO_TASK)
def ingest_reads(uri: str, shard_size: int, staging_dir: str = ".helixflow/fsx",
                 s3: S3Settings | None = None) -> IngestedReads:
    """Parse and validate a FASTQ/FASTA reads file into batches of ``shard_size`` reads
    (an ``s3://`` object is first copied under ``<staging_dir>/inputs/``)."""
    path = fetch(uri, staging_dir, s3)
    batches = [ReadBatch()]
    lengths: list[int] = []
    for record in read_fastx(path):
        if len(batches[-1].names) == shard_size:
            batches.append(ReadBatch())
        batches[-1].names.append(record.name)
        batches[-1].seqs.append(record.seq)
        lengths.append(len(record.seq))
    lens = np.array(lengths, dtype=np.int64)
    reads = IngestedReads(str(uri), sha256_file(path), batches, len(lens), int(lens.sum()), lens)
    get_run_logger().info("ingested %d reads (%d bases) from %s in %d batches",
                          reads.n_reads, reads.n_bases, uri, len(batches))
    create_table_artifact(
        key="ingest-reads",
        table=[{"file": str(uri), "reads": reads.n_reads, "bases": reads.n_bases,
                "min_len": int(lens.min()), "mean_len": round(float(lens.mean()), 1),
                "max_len": int(lens.max()), "sha256": reads.sha256[:16]}],
        description="Reads ingested and validated",
    )
    hist = "\n".join(f"| {h['from']}-{h['to']} | {h['reads']} |" for h in length_histogram(lens))
    create_markdown_artifact(
        key="ingest-read-lengths",
        markdown=f"### Read lengths: {uri}\n\n| length | reads |\n|---|---|\n{hist}\n",
        description="Read length histogram",
    )
    return reads


@task(name="ingest-reference", **IO_TASK)
def ingest_reference(uri: str, staging_dir: str = ".helixflow/fsx", s3: S3Settings | None = None) -> IngestedReference:
    """Parse and validate a reference FASTA; contig names must be unique."""
    path = fetch(uri, staging_dir, s3)
    names: list[str] = []
    seqs: list[bytes] = []
    first_line: dict[str, int] = {}
    for record in read_fastx(path):
        if record.name in first_line:
            raise FastxFormatError(
                path, record.line,
                f"duplicate contig name {record.name!r} (first seen at line {first_line[record.name]}); "
                "expected unique contig names",
            )
        first_line[record.name] = record.line
        names.append(record.name)
        seqs.append(record.seq)
    ref = IngestedReference(str(uri), sha256_file(path), names, seqs)
    create_table_artifact(
        key="ingest-reference",
        table=[{"contig": n, "length": len(s)} for n, s in zip(names, seqs)],
        description=f"Reference {uri}: {len(names)} contigs, {sum(map(len, seqs))} bases",
    )
    return ref
