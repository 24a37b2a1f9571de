"""Benchmark flows.

``pipeline-benchmark`` runs the align-reads flow over a grid of settings (data size, shard
size, Ray workers, MPI ranks, kernel, backend: the base and one factor varied at a time),
measures every stage, projects cost onto EC2 instance types and writes ``report.md`` with
PNG plots and CSV tables: ``python -m flows.benchmark`` (``make bench`` runs the default
grid). ``data-plane-benchmark`` is ingest + encode + stage alone (``make bench-data``).
``kernel-benchmark`` is GCUPS of our kernels against parasail
(``python -m flows.benchmark --kernels-only``; ``make bench-kernel`` prints the full table).
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow

from bench.grid import Config, one_factor_grid
from bench.tasks import machine_meta, measure_config, measure_kernels, simulate_data, write_report
from flows.params import BenchmarkParams, PipelineBenchmarkParams, parse_cli
from hpc.manifest import RunSettings
from tasks.encode import encode_reads
from tasks.ingest import ingest_reads
from tasks.runtime.ray_cluster import ray_connection
from tasks.stage import run_root, stage_reads


@flow(name="data-plane-benchmark")
def data_plane_benchmark(reads_path: str, staging_dir: str, shard_size: int, workers: int) -> dict:
    """Ingest + Ray encode + stage of one reads file and nothing after (``python -m bench data``)."""
    with ray_connection(None, workers):  # as in the align-reads flow: workers warm up during ingest
        reads = ingest_reads(reads_path, staging_dir)
        root = str(run_root(staging_dir, reads.sha256, "", RunSettings(shard_size=shard_size)))
        shards = encode_reads(reads, root, shard_size)
    stage_reads(root, reads, shards)
    return {"reads": sum(s["reads"] for s in shards), "shards": len(shards), "root": root}


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
