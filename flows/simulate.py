"""The simulate flow: a reference with several contigs and reads with known origin.

Run it as ``python -m flows.simulate --output DIR [--reads 5000 --seed 42 ...]``.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from flows.params import SimulateParams, parse_cli
from hpc.manifest import atomic_write_bytes
from tasks.simulation import fasta_text, fastq_text, simulate_reads, simulate_reference
from tasks.task_options import IO_TASK


@task(name="write-simulated-data", **IO_TASK)
def write_simulated(params: SimulateParams) -> dict:
    reference = simulate_reference(params.contigs, params.contig_length, params.seed,
                                   repeat_fraction=params.repeat_fraction,
                                   repeat_divergence=params.repeat_divergence, n_runs=params.n_runs)
    reads = simulate_reads(reference, params.reads, params.read_length, params.substitution_rate,
                           params.indel_rate, params.seed + 1)
    out = Path(params.output).resolve()
    ref_path = out / "reference.fa"
    atomic_write_bytes(ref_path, fasta_text(reference).encode())
    data = fastq_text(reads).encode()
    reads_path = out / ("reads.fq.gz" if params.gzip else "reads.fq")
    atomic_write_bytes(reads_path, gzip.compress(data, mtime=0) if params.gzip else data)
    create_table_artifact(
        key="simulated-data",
        table=[{"reference": str(ref_path), "contigs": params.contigs, "contig_length": params.contig_length,
                "reads_file": str(reads_path), "reads": params.reads, "read_length": params.read_length,
                "seed": params.seed}],
        description="Simulated reference and reads",
    )
    return {"reference": str(ref_path), "reads": str(reads_path)}


@flow(name="simulate-reads")
def simulate(params: SimulateParams) -> dict:
    """Write reference.fa and reads.fq(.gz); read names carry their true origin."""
    return write_simulated(params)


def main(argv: list[str] | None = None) -> int:
    paths = simulate(parse_cli(SimulateParams, argv, "python -m flows.simulate"))
    print(f"reference: {paths['reference']}\nreads:     {paths['reads']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
