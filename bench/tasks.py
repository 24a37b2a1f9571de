"""Benchmark tasks: simulate the data, measure one configuration, project cost, write the report."""

from __future__ import annotations

import base64
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from bench import cost as bench_cost
from bench.grid import Config
from bench.plots import pareto_png, stage_bars_png, throughput_png
from bench.report import COST, HEADLINE, STAGES, csv_text, headline_rows, render_report, scaling_fit, stage_rows
from bench.run import measure_run
from hpc.files import atomic_write_bytes, atomic_write_text
from tasks.genomics.simulation import fasta_text, simulate_reads, simulate_reference
from tasks.simulate import write_reads

REPO = Path(__file__).resolve().parent.parent
INSTANCES = REPO / "bench" / "instances.json"
MEASURED = REPO / "bench" / "measured"


@task(name="bench-data")
def simulate_data(work: str, genome: int, reads: int, scales: list[int], seed: int) -> dict:
    """A genome with diverged repeats and N runs, and reads at each scale (both strands)."""
    out = Path(work).resolve() / "data"
    reference = simulate_reference(2, genome // 2, seed, repeat_fraction=0.05, repeat_divergence=0.02, n_runs=4)
    ref_path = out / "reference.fa"
    atomic_write_text(ref_path, fasta_text(reference))
    paths = {scale: str(write_reads(out / f"reads_x{scale}.fq.gz",
                                    simulate_reads(reference, reads * scale, 150, 0.006, 0.0005, seed + scale)))
             for scale in sorted(set(scales))}
    return {"reference": str(ref_path), "reads": paths}


@task(name="measure-kernels")
def measure_kernels(params) -> list[dict]:
    """GCUPS of every kernel against parasail's on the same pairs (``params``: BenchmarkParams)."""
    from bench.kernel import measure, parse_args

    args = parse_args(["--pairs", str(params.pairs), "--read-len", str(params.read_length),
                       "--window-len", str(params.window_length), "--rss-pairs", "0"])
    rows = measure(args)
    table = [{"kernel": name, "gcups": round(g, 3), "x_parasail_16": round(g / rows[0][1], 2)} for name, g in rows]
    create_table_artifact(key="kernel-benchmark", table=table,
                          description=f"GCUPS on {params.pairs} pairs of {params.read_length} x {params.window_length}")
    return table


@task(name="bench-measure")
def measure_config(config: Config, varied: str, data: dict, work: str) -> dict:
    record = measure_run(config, varied, Path(data["reads"][config.scale]), Path(data["reference"]), Path(work))
    get_run_logger().info("%s: %s%s", config.label, record["status"],
                          f", {record['wall_s']:.1f} s wall" if record["status"] == "measured" else "")
    return record


def recorded_gpu_runs() -> list[dict]:
    """Rows of the recorded GPU kernel measurements (largest run of each file)."""
    rows = []
    for path in sorted(MEASURED.glob("kernel-cuda-*.json")):
        data = json.loads(path.read_text())
        big = max(data["rows"], key=lambda r: r["pairs"])
        rows.append({**big, "device": data["device"], "measured_at": data["measured_at"],
                     "pairs_checked": data["pairs_checked"], "mismatching_outputs": data["mismatching_outputs"]})
    return rows


def cpu_one_thread_gcups() -> float:
    """The vectorized kernel on one thread, on 2,000 pairs (for the GPU projection)."""
    from bench.kernel import numba_gcups, workload

    return numba_gcups("cpu", 1, workload(2000, 150, 250, 3))


@task(name="bench-report")
def write_report(records: list[dict], work: str, meta: dict) -> dict:
    """report.md, PNG plots, CSV tables and measurements.json under ``<work>/report``."""
    out = Path(work).resolve() / "report"
    measured = [r for r in records if r["status"] == "measured"]
    instances = bench_cost.load_instances(INSTANCES)
    gpu = recorded_gpu_runs()
    gpu_gcups = {inst["gpu_model"]: g["cuda_gcups"] for inst in instances["instances"] for g in gpu
                 if inst["gpu_model"] and inst["gpu_model"] in g["device"]}
    cpu1 = cpu_one_thread_gcups()
    series = sorted((r for r in measured if r["varied"] in ("base", "scale") and r["config"]["kernel"] == "cpu"),
                    key=lambda r: r["reads"])
    costs, profile = [], None
    if len(series) >= 2:
        profile = bench_cost.marginal_profile(series[-2], series[-1])
        for inst in instances["instances"]:
            costs.append(bench_cost.project(profile, inst, cpu1, gpu_gcups))
            if inst["gpus"]:
                costs.append(bench_cost.project(profile, inst, cpu1, gpu_gcups, gpu=True))
    front = bench_cost.pareto(costs)
    for c in costs:
        c["pareto"] = "yes" if c in front else ""
        for k in ("seconds_per_m_reads", "usd_per_m_reads", "usd_per_30x_human"):
            # significant figures, not decimals: a tiny grid's projection is a fraction of a second
            c[k] = None if c[k] is None else float(f"{c[k]:.4g}")
    model = bench_cost.__doc__.split("Assumptions (the report prints them next to the numbers):")[1].strip()
    fitted = ("not projected: fewer than two data sizes measured with the base settings" if profile is None else
              f"From the runs of {profile['reads'][0]:,} and {profile['reads'][1]:,} reads, per read: "
              f"{profile['serial_s'] * 1e6:.1f} s per million reads in one process, "
              f"{profile['ray_cpu_s'] * 1e6:.1f} CPU-s per million in Ray stages at {profile['ray_util']:.0%} "
              f"core utilization, {profile['align_cpu_s'] * 1e6:.1f} CPU-s per million in the align ranks at "
              f"{profile['align_util']:.0%}, {profile['cells']:.3g} DP cells per read; the vectorized kernel on "
              f"one thread scored {cpu1:.2f} GCUPS in this run.")
    assumptions = (f"Prices: `bench/instances.json`, {instances['price_kind']}, {instances['region']}, as of "
                   f"{instances['prices_as_of']} ({instances['source']}).\n\nModel:\n\n{model}\n\n{fitted}")
    plots = {}
    if measured:
        atomic_write_bytes(out / "stage_times.png", stage_bars_png(measured))
        plots["stages"] = "stage_times.png"
    ranks = sorted((r["config"]["ranks"], r) for r in measured if r["varied"] in ("base", "ranks"))
    if len(ranks) > 1:
        atomic_write_bytes(out / "throughput_vs_ranks.png", throughput_png(
            [n for n, _ in ranks], [r["kernel"]["gcups"] for _, r in ranks], [r["reads_per_s"] for _, r in ranks]))
        plots["throughput"] = "throughput_vs_ranks.png"
    if front:
        atomic_write_bytes(out / "cost_vs_time.png", pareto_png(costs, front))
        plots["pareto"] = "cost_vs_time.png"
    fit = scaling_fit(records)
    report = render_report(meta, records, costs, fit, gpu, assumptions, plots)
    atomic_write_text(out / "measurements.json", json.dumps({"meta": meta, "records": records}, indent=2))
    atomic_write_text(out / "configs.csv", csv_text(headline_rows(records), HEADLINE))
    atomic_write_text(out / "stages.csv", csv_text(stage_rows(measured), STAGES))
    atomic_write_text(out / "cost.csv", csv_text(costs, COST))
    atomic_write_text(out / "report.md", report)
    embedded = report
    for name in plots.values():  # the UI shows images inline as data URIs
        embedded = embedded.replace(f"]({name})", f"](data:image/png;base64,{base64.b64encode((out / name).read_bytes()).decode()})")
    create_markdown_artifact(key="benchmark-report", markdown=embedded,
                             description=f"Pipeline benchmark: settings, stages, scaling, cost ({out / 'report.md'})")
    create_table_artifact(key="benchmark-headline", table=headline_rows(records), description="Benchmark headline")
    return {"report": str(out / "report.md"), "plots": [str(out / p) for p in plots.values()],
            "headline": headline_rows(records), "folder": str(out)}


def machine_meta(data_text: str) -> dict:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.node()}: {os.cpu_count()} CPUs, {mem:.0f} GiB memory, "
                       f"Python {platform.python_version()}, no GPU unless named",
            "data": data_text}
