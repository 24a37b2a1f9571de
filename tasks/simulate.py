"""Simulate task: a reference and reads with known origin, written as FASTA and FASTQ(.gz).

:func:`write_simulated` is the one way helixflow writes a simulated data set (the simulate
flow, the benchmarks and the tests' data all go through it); the task wraps it with an
artifact.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from prefect import task
from prefect.artifacts import create_table_artifact

from hpc.files import atomic_write_bytes, atomic_write_text
from tasks.genomics.simulation import SimulatedRead, fasta_text, fastq_text, simulate_reads, simulate_reference
from tasks.runtime.options import IO_TASK


def write_reads(path: Path, reads: list[SimulatedRead]) -> Path:
    """FASTQ of ``reads`` at ``path``, gzip-compressed (level 1, no timestamp) when it ends in .gz."""
    path = Path(path)
    data = fastq_text(reads).encode()
    atomic_write_bytes(path, gzip.compress(data, compresslevel=1, mtime=0) if path.suffix == ".gz" else data)
    return path


def write_simulated(output: str | Path, *, contigs: int = 3, contig_length: int = 200_000, reads: int = 5_000,
                    read_length: int = 150, substitution_rate: float = 0.006, indel_rate: float = 0.0005,
                    repeat_fraction: float = 0.0, repeat_divergence: float = 0.02, n_runs: int = 0, seed: int = 42,
                    gzip: bool = True, reference_name: str = "reference.fa") -> tuple[Path, Path]:
    """Simulate a reference (seed ``seed``) and reads from it (seed ``seed + 1``); write
    ``<output>/reference.fa`` and ``<output>/reads.fq.gz`` (``reads.fq`` without gzip)."""
    out = Path(output).resolve()
    reference = simulate_reference(contigs, contig_length, seed, repeat_fraction=repeat_fraction,
                                   repeat_divergence=repeat_divergence, n_runs=n_runs)
    ref_path = out / reference_name
    atomic_write_text(ref_path, fasta_text(reference))
    sampled = simulate_reads(reference, reads, read_length, substitution_rate, indel_rate, seed + 1)
    return ref_path, write_reads(out / ("reads.fq.gz" if gzip else "reads.fq"), sampled)


@task(name="write-simulated-data", **IO_TASK)
def simulate_data(output: str, **settings) -> dict:
    """:func:`write_simulated` with a table artifact; returns the two paths."""
    ref_path, reads_path = write_simulated(output, **settings)
    create_table_artifact(
        key="simulated-data",
        table=[{"reference": str(ref_path), "reads_file": str(reads_path), **settings}],
        description="Simulated reference and reads",
    )
    return {"reference": str(ref_path), "reads": str(reads_path)}
