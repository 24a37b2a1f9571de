"""Every flow's parameters as a pydantic model (the Prefect UI renders them as forms) and
their command line."""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, CliApp, SettingsConfigDict

from hpc.choices import Backend, JobMode, Kernel, Launcher
from hpc.kernels.scoring import Scoring
from hpc.manifest import RunSettings
from tasks.storage.s3 import S3Settings

M = TypeVar("M", bound=BaseModel)


def _printable(value: str) -> str:
    """Paths, URIs and scheduler values reach shell scripts, sbatch directives and file names:
    a newline or other control character there would change what they say."""
    bad = next((c for c in value if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise ValueError(f"contains the control character {bad!r} at position {value.index(bad)}; "
                         "expected printable text")
    return value


Text = Annotated[str, AfterValidator(_printable)]


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
    reads: Text | None = Field(None, description="FASTQ/FASTA (plain or .gz; R1 of a pair): local path, file:// or "
                               "s3://bucket/key. One sample; or give `samplesheet`")
    reads2: Text | None = Field(None, description="R2 of a pair (mate names may end /1 and /2)")
    interleaved: bool = Field(False, description="`reads` holds pairs, R1 then R2, record by record")
    samplesheet: Text | None = Field(None, description="CSV with columns sample,fastq_1,fastq_2 (fastq_2 empty: "
                                     "single-end): one subflow per sample, outputs named by sample")
    sample: Text | None = Field(None, description="sample name of `reads` (@RG SM; default: the file name)")
    library: Text | None = Field(None, description="@RG LB (default: the sample name)")
    platform: Text = Field("ILLUMINA", description="@RG PL")
    reference: Text = Field(description="reference FASTA (plain or .gz): local path, file:// or s3://bucket/key")
    output: Text = Field(".helixflow/out", description="folder (or s3://bucket/prefix) for <sample>.bam (+ .bai), "
                         "<sample>.paf and <sample>.summary.json")
    staging_dir: Text = Field(".helixflow/fsx", description="FSx for Lustre mount or a local folder")
    ray_address: Text | None = Field(None, description="None starts local Ray; 'auto' or ray://host:10001 joins")
    ray_workers: int | None = Field(None, ge=1, description="CPUs of a local Ray started by the flow (default: all)")
    backend: Backend = Field(
        "auto", description="where the MPI job runs: auto picks slurm when sinfo answers, else local")
    launcher: Launcher = Field("mpiexec", description="how ranks start inside the job")
    mode: JobMode = Field(
        "mpi", description="one MPI job of `ranks` ranks, or (slurm) a job array of `ranks` tasks")
    partition: Text | None = Field(None, description="Slurm partition (default: the cluster's default)")
    time_limit: Text = Field("01:00:00", description="Slurm time limit of the alignment job")
    max_resubmits: int = Field(2, ge=0, le=10, description="resubmissions after NODE_FAIL or PREEMPTED")
    pending_timeout: int = Field(3600, ge=10, description="seconds a Slurm job may wait in the queue before it is "
                                 "cancelled (one that Slurm says can never start is cancelled at once)")
    ranks: int = Field(2, ge=1, le=4096, description="MPI ranks")
    kernel: Kernel = Field(
        "cpu", description="Smith-Waterman kernel: cpu (vectorized), scalar (reference), cuda (GPU)")
    shard_size: int = Field(5000, ge=1, description="reads per shard (at most)")
    shard_mb: float = Field(64.0, gt=0, description="MiB of bases per shard (at most)")
    kmer: int | None = Field(None, ge=8, le=31, description="seed k-mer length (default: 15 for a reference under "
                             "1 Gbp, 21 from 1 Gbp, as minimap2's short-read preset)")
    minimizer_window: int | None = Field(None, ge=1, le=32, description="(w,k)-minimizer window; 1 seeds with every "
                                         "k-mer (default: 5 for a reference under 1 Gbp, 11 from 1 Gbp)")
    index_memory_gb: float | None = Field(None, gt=0, description="memory the reference index may take, GiB "
                                          "(default: what the node has available); a larger one is refused "
                                          "before it is built")
    max_candidates: int = Field(3, ge=1, le=50, description="candidate windows kept per read")
    max_secondary: int = Field(5, ge=0, le=50, description="secondary alignments (tp:A:S) reported per read, "
                               "at other loci scoring >= 80% of the primary")
    min_score: int = Field(60, ge=1, description="least alignment score reported (default: 30 matches' worth, "
                           "as bwa-mem's -T 30; a read shorter than that needs half its perfect match); a read "
                           "whose best scores less is unmapped")
    bam: bool = Field(True, description="write <sample>.bam, coordinate-sorted, with its index (needs FASTQ)")
    sam: bool = Field(False, description="also write <sample>.sam (unsorted, with unmapped reads)")
    qualities: bool = Field(True, description="keep FASTQ base qualities through the shards and write them "
                            "in SAM/BAM (off: QUAL is '*' and BAM is refused)")
    scoring: ScoringParams = Field(default_factory=ScoringParams)
    s3: S3Settings = Field(default_factory=S3Settings)

    @model_validator(mode="after")
    def _one_input(self) -> "PipelineParams":
        if (self.reads is None) == (self.samplesheet is None):
            raise ValueError("give either reads (one sample) or samplesheet (many), not both or neither")
        if self.samplesheet is not None and (self.reads2 or self.interleaved or self.sample):
            raise ValueError("reads2, interleaved and sample describe --reads; a samplesheet gives them per sample")
        if self.reads2 is not None and self.interleaved:
            raise ValueError("interleaved means one file holds both mates; give reads2 or interleaved, not both")
        if self.bam and not self.qualities:
            raise ValueError("a BAM needs base qualities: keep qualities on, or set bam false")
        return self

    def run_settings(self, seeding: tuple[int, int]) -> RunSettings:
        """The settings that key the run folder and travel in its manifest; ``seeding``: the
        ``(k, w)`` of the index the run seeds with (``kmer`` and ``minimizer_window``, or what
        the reference's size chose for them)."""
        return RunSettings(shard_size=self.shard_size, shard_mb=self.shard_mb, kmer=seeding[0],
                           minimizer_window=seeding[1], max_candidates=self.max_candidates,
                           max_secondary=self.max_secondary, min_score=self.min_score,
                           scoring=Scoring(**self.scoring.model_dump()), qualities=self.qualities)


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


class BenchmarkParams(BaseModel):
    """Parameters of the kernel-benchmark flow."""

    model_config = ConfigDict(extra="forbid")
    pairs: int = Field(20_000, ge=64, description="read x window pairs")
    read_length: int = Field(150, ge=16, le=1000)
    window_length: int = Field(250, ge=16, le=2000)


class PipelineBenchmarkParams(BaseModel):
    """Parameters of the pipeline-benchmark flow; the first of each list is the base value."""

    model_config = ConfigDict(extra="forbid")
    work: str = Field(".helixflow/bench", description="folder for data, staging, outputs and the report")
    genome: int = Field(1_000_000, ge=10_000, description="bases in the simulated genome")
    reads: int = Field(10_000, ge=100, description="reads at scale 1")
    scales: list[int] = Field([4, 1, 16], min_length=1, description="data sizes, as multiples of `reads`")
    shard_sizes: list[int] = Field([2500, 1000, 10000], min_length=1)
    ray_workers: list[int] = Field([2, 1], min_length=1)
    ranks: list[int] = Field([2, 1], min_length=1)
    kernels: list[Kernel] = Field(["cpu", "scalar", "cuda"], min_length=1)
    backends: list[Backend] = Field(["local", "slurm"], min_length=1)
    seed: int = 11
    warmup: bool = Field(True, description="run the base settings once, unrecorded, first (caches, Ray workers)")


def _nested_flags(model: type[BaseModel]) -> dict[str, str]:
    """``--scoring.match`` is also ``--match``, ``--s3.endpoint-url`` also ``--endpoint-url``:
    the flags stay flat, as they were before the CLI came from pydantic-settings."""
    return {f"{name}.{sub}".replace("_", "-"): sub.replace("_", "-")
            for name, info in model.model_fields.items()
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
            for sub in info.annotation.model_fields}


def parse_cli(model: type[M], argv: list[str] | None, prog: str) -> M:
    """Build ``model`` from ``--field value`` flags (pydantic-settings' CLI: kebab-case, lists as
    ``1,4,16``, nested fields also as flat flags). Only the command line is read, never the
    environment; a value the model refuses exits 2 naming the flag, as argparse does."""
    class Cli(model, BaseSettings):  # type: ignore[valid-type, misc]
        model_config = SettingsConfigDict(cli_prog_name=prog, cli_kebab_case=True, cli_avoid_json=True,
                                          cli_hide_none_type=True, cli_shortcuts=_nested_flags(model))

        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, **others):
            return (init_settings,)

    try:
        parsed = CliApp.run(Cli, cli_args=sys.argv[1:] if argv is None else argv)
    except ValidationError as exc:
        problems = "; ".join(f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors())
        print(f"usage: {prog} --help\n{prog}: error: {problems}", file=sys.stderr)
        raise SystemExit(2) from None
    return model.model_validate(parsed.model_dump())


def quiet_exit() -> None:
    """Call when the flow has ended: Prefect's ephemeral API logs 'Stopping temporary server'
    as the interpreter exits, which would otherwise follow the CLI's own last line."""
    logging.getLogger("prefect").setLevel(logging.WARNING)


def run_samples(params: PipelineParams) -> list:
    """The run's samples: each row of the samplesheet (checked, with its line), or the one
    sample of ``--reads``."""
    from tasks.genomics.samplesheet import SampleSpec, parse_samplesheet, sample_name_from_path
    from tasks.storage.uri import parse_uri

    if params.samplesheet is None:
        paired = params.reads2 is not None or params.interleaved
        name = params.sample or sample_name_from_path(params.reads, paired)
        return [SampleSpec(name, params.reads, params.reads2, params.interleaved, params.library, params.platform)]
    uri = params.samplesheet
    if parse_uri(uri).is_s3:
        raise ValueError(f"{uri}: a samplesheet is read from a local path or file://; its fastq files may be s3://")
    path = Path(uri[len("file://"):] if uri.startswith("file://") else uri)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: samplesheet not found")
    samples = parse_samplesheet(path.read_text(encoding="utf-8-sig"), str(path), path.parent)
    return [s if s.library or not params.library else dataclasses.replace(s, library=params.library) for s in samples]


def helixflow_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("helixflow")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without install
        return "unknown"


def command_line(params: BaseModel) -> str:
    """The run as a command line (``@PG CL``): the flags that differ from their defaults,
    however the run was started (CLI, deployment, UI)."""
    words = ["python", "-m", "flows.pipeline"]
    for key, value in params.model_dump(exclude_defaults=True, mode="json").items():
        if isinstance(value, dict):
            words += [f"--{key.replace('_', '-')}.{k.replace('_', '-')} {v}" for k, v in value.items()]
        else:
            words.append(f"--{key.replace('_', '-')} {value}")
    return " ".join(words)
