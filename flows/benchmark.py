"""Benchmark flows.

``pipeline-benchmark`` runs the align-reads flow over a grid of settings (data size, shard
size, Ray workers, MPI ranks, kernel, backend: the base and one factor varied at a time),
measures every stage, projects cost onto EC2 instance types and writes ``report.md`` with
PNG plots and CSV tables: ``python -m flows.benchmark`` (``make bench`` runs the default
grid). ``kernel-benchmark`` is GCUPS of our kernels against parasail
(``python -m flows.benchmark --kernels-only``; ``make bench-kernel`` prints the full table).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, ConfigDict, Field

from flows.params import parse_cli
from hpc.bench import measure, parse_args
from tasks.bench_grid import Config, one_factor_grid
from tasks.bench_tasks import machine_meta, measure_config, simulate_data, write_report


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
    kernels: list[Literal["cpu", "scalar", "cuda"]] = Field(["cpu", "scalar", "cuda"], min_length=1)
    backends: list[Literal["local", "slurm"]] = Field(["local", "slurm"], min_length=1)
    seed: int = 11
    warmup: bool = Field(True, description="run the base settings once, unrecorded, first (caches, Ray workers)")


@task(name="measure-kernels")
def measure_kernels(params: BenchmarkParams) -> list[dict]:
    args = parse_args(["--pairs", str(params.pairs), "--read-len", str(params.read_length),
                       "--window-len", str(params.window_length), "--rss-pairs", "0"])
    rows = measure(args)
    table = [{"kernel": name, "gcups": round(g, 3), "x_parasail_16": round(g / rows[0][1], 2)} for name, g in rows]
    create_table_artifact(key="kernel-benchmark", table=table,
                          description=f"GCUPS on {params.pairs} pairs of {params.read_length} x {params.window_length}")
    return table


@flow(name="kernel-benchmark")
def kernel_benchmark(params: BenchmarkParams) -> list[dict]:
    return measure_kernels(params)


@flow(name="pipeline-benchmark")
def pipeline_benchmark(params: PipelineBenchmarkParams) -> dict:
    """Measure the pipeline over the settings grid; return the report's paths and headline."""
    work = str(Path(params.work).resolve())
    data = simulate_data(work, params.genome, params.reads, params.scales, params.seed)
    base = Config(params.scales[0], params.shard_sizes[0], params.ray_workers[0], params.ranks[0],
                  params.kernels[0], params.backends[0])
    grid = one_factor_grid(base, {"scale": params.scales, "shard_size": params.shard_sizes,
                                  "ray_workers": params.ray_workers, "ranks": params.ranks,
                                  "kernel": params.kernels, "backend": params.backends})
    if params.warmup:
        measure_config(base, "warm-up", data, work)
    records = [measure_config(config, varied, data, work) for config, varied in grid]
    meta = machine_meta(f"simulated {params.genome / 1e6:g}-Mbp genome (2 contigs, 5% diverged repeats, N runs), "
                        f"{params.reads:,} reads of 150 bp at scale 1 (x{', x'.join(map(str, sorted(params.scales)))}); "
                        f"base settings: {base.label}" + ("; one unrecorded warm-up run first" if params.warmup else ""))
    return write_report(records, work, meta)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--kernels-only" in argv:
        argv.remove("--kernels-only")
        for row in kernel_benchmark(parse_cli(BenchmarkParams, argv, "python -m flows.benchmark --kernels-only")):
            print(f"{row['kernel']:52s} {row['gcups']:8.3f} {row['x_parasail_16']:6.2f}")
        return 0
    result = pipeline_benchmark(parse_cli(PipelineBenchmarkParams, argv, "python -m flows.benchmark"))
    cols = ("configuration", "status", "wall_s", "orchestration_pct", "reads_per_s", "align_gcups",
            "peak_rss_mib", "correct_pct")
    print(" | ".join(cols))
    for row in result["headline"]:
        print(" | ".join("" if row[c] is None else str(row[c]) for c in cols))
    print(f"report: {result['report']}")
    for plot in result["plots"]:
        print(f"plot:   {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
