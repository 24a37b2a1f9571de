"""Flow parameters as pydantic models (the Prefect UI renders them as forms) and their CLI."""

from __future__ import annotations

import argparse
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hpc.sw_kernel import Scoring
from tasks.storage import S3Settings


class ScoringParams(BaseModel):
    """Local alignment scores; a gap of length k scores gap_open + (k - 1) * gap_extend."""

    model_config = ConfigDict(extra="forbid")
    match: int = Field(2, gt=0)
    mismatch: int = Field(-4, description="score of a mismatch or of any base against N")
    gap_open: int = Field(-6, le=0)
    gap_extend: int = Field(-1, le=0)

    @model_validator(mode="after")
    def _consistent(self) -> "ScoringParams":
        Scoring(**self.model_dump())
        return self


class PipelineParams(BaseModel):
    """Parameters of the align-reads flow."""

    model_config = ConfigDict(extra="forbid")
    reads: str = Field(description="FASTQ/FASTA (plain or .gz): local path, file:// or s3://bucket/key")
    reference: str = Field(description="reference FASTA (plain or .gz): local path, file:// or s3://bucket/key")
    output: str = Field(".helixflow/out", description="folder (or s3://bucket/prefix) for alignments.paf and summary.json")
    staging_dir: str = Field(".helixflow/fsx", description="FSx for Lustre mount or a local folder")
    ray_address: str | None = Field(None, description="None starts local Ray; 'auto' or ray://host:10001 joins")
    ray_workers: int | None = Field(None, ge=1, description="CPUs of a local Ray started by the flow (default: all)")
    backend: Literal["auto", "local", "slurm"] = Field(
        "auto", description="where the MPI job runs: auto picks slurm when sinfo answers, else local")
    launcher: Literal["mpiexec", "srun"] = Field("mpiexec", description="how ranks start inside the job")
    mode: Literal["mpi", "array"] = Field(
        "mpi", description="one MPI job of `ranks` ranks, or (slurm) a job array of `ranks` tasks")
    partition: str | None = Field(None, description="Slurm partition (default: the cluster's default)")
    time_limit: str = Field("01:00:00", description="Slurm time limit of the alignment job")
    max_resubmits: int = Field(2, ge=0, le=10, description="resubmissions after NODE_FAIL or PREEMPTED")
    ranks: int = Field(2, ge=1, le=4096, description="MPI ranks")
    kernel: Literal["cpu", "scalar", "cuda"] = Field(
        "cpu", description="Smith-Waterman kernel: cpu (vectorized), scalar (reference), cuda (GPU)")
    shard_size: int = Field(5000, ge=1, description="reads per shard (at most)")
    shard_mb: float = Field(64.0, gt=0, description="MiB of bases per shard (at most)")
    kmer: int = Field(15, ge=8, le=31, description="seed k-mer length")
    minimizer_window: int = Field(5, ge=1, le=32, description="(w,k)-minimizer window; 1 seeds with every k-mer")
    max_candidates: int = Field(3, ge=1, le=50, description="candidate windows kept per read")
    max_secondary: int = Field(5, ge=0, le=50, description="secondary alignments (tp:A:S) reported per read, "
                               "at other loci scoring >= 80% of the primary")
    sam: bool = Field(False, description="also write alignments.sam (with unmapped reads)")
    scoring: ScoringParams = Field(default_factory=ScoringParams)
    s3: S3Settings = Field(default_factory=S3Settings)


class SimulateParams(BaseModel):
    """Parameters of the simulate flow."""

    model_config = ConfigDict(extra="forbid")
    output: str = Field(".helixflow/sim", description="folder for reference.fa and reads.fq.gz")
    contigs: int = Field(3, ge=1)
    contig_length: int = Field(200_000, ge=1_000)
    reads: int = Field(5_000, ge=1)
    read_length: int = Field(150, ge=20)
    substitution_rate: float = Field(0.006, ge=0, lt=0.5)
    indel_rate: float = Field(0.0005, ge=0, lt=0.5)
    repeat_fraction: float = Field(0.0, ge=0, lt=1, description="share of the genome made of diverged repeat copies")
    repeat_divergence: float = Field(0.02, ge=0, lt=1, description="substitution rate of each repeat copy")
    n_runs: int = Field(0, ge=0, description="runs of 200 N written into the reference")
    seed: int = 42
    gzip: bool = True


def _help(info, name: str) -> str:
    text = f"{info.description or name} (default {info.default})"
    return text.replace("%", "%%")  # argparse formats help with %


def parse_cli(model: type[BaseModel], argv: list[str] | None, prog: str) -> BaseModel:
    """Build ``model`` from ``--field value`` flags (nested model fields are flattened)."""
    parser = argparse.ArgumentParser(prog=prog, description=model.__doc__)
    nested: dict[str, type[BaseModel]] = {}
    for name, info in model.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            nested[name] = sub
            for sub_name, sub_info in sub.model_fields.items():
                parser.add_argument(f"--{sub_name.replace('_', '-')}", dest=f"{name}.{sub_name}",
                                    help=_help(sub_info, sub_name))
        else:
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, required=info.is_required(),
                                help=_help(info, name))
    values: dict = {}
    for dest, value in vars(parser.parse_args(argv)).items():
        if value is None:
            continue
        field = model.model_fields.get(dest)
        if field is not None and getattr(field.annotation, "__origin__", None) is list:
            value = [v.strip() for v in value.split(",") if v.strip()]  # --scales 1,4,16
        if "." in dest:
            outer, inner = dest.split(".", 1)
            values.setdefault(outer, {})[inner] = value
        else:
            values[dest] = value
    return model.model_validate(values)
