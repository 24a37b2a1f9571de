"""Run the align-reads flow for one benchmark configuration and measure it per stage.

Per stage (each task run of the flow): wall time from Prefect's task-run start and end,
CPU seconds and peak RSS from the process-tree sampler over that interval, and
throughput. The align stage adds the ranks' own CPU seconds, peak RSS, DP cells and
compute time from their completion markers. Orchestration is the flow's wall time outside
its task runs (Prefect, Ray start and stop) plus the align stage's time outside the ranks'
compute (job launch, Slurm queue, interpreter and JIT-cache start-up).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.grid import Config
from bench.meter import TreeSampler
from hpc import run_folder
from hpc.files import MIB


def task_intervals(flow_run_id) -> list[tuple[str, float, float]]:
    """(stage name, start, end) of every completed task run of a flow run and of its subflows
    (the align-sample run of each sample), by start time."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
        ids = [flow_run_id] + [r.id for r in children]
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    out = [(r.name.rsplit("-", 1)[0], r.start_time.timestamp(), r.end_time.timestamp())
           for r in runs if r.start_time and r.end_time]
    return sorted(out, key=lambda x: x[1])


def rank_markers(staging: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in run_folder.rank_markers(run_folder.align_dir(staging))]


def unavailable(config: Config) -> str | None:
    """Why this configuration cannot be measured here, or None."""
    if config.kernel == "cuda":
        from numba import config as numba_config
        from numba import cuda

        if numba_config.ENABLE_CUDASIM or not cuda.is_available():
            return "not measured: no GPU"
    if config.backend == "slurm":
        from hpc.slurm import SlurmBackend

        if not SlurmBackend().available():
            return "not measured: no Slurm controller answers sinfo"
    return None


def measure_run(config: Config, varied: str, reads_path: Path, reference_path: Path, work: Path) -> dict:
    """Measurements of one align-reads run with ``config``'s settings."""
    from flows.params import PipelineParams
    from flows.pipeline import align_reads

    record = {"config": config.as_dict(), "varied": varied, "status": unavailable(config)}
    if record["status"]:
        return record
    tag = config.label.replace(" ", "_").replace("=", "")
    params = PipelineParams(reads=str(reads_path), reference=str(reference_path), output=str(work / "out" / tag),
                            staging_dir=str(work / "fsx"), ranks=config.ranks, kernel=config.kernel,
                            backend=config.backend, shard_size=config.shard_size, ray_workers=config.ray_workers)
    t0 = time.time()
    with TreeSampler() as sampler:
        state = align_reads(params, return_state=True)
    wall = time.time() - t0
    if not state.is_completed():
        record["status"] = f"failed: {state.message}"
        return record
    summary = state.result()
    reads, in_bytes = summary["reads"], reads_path.stat().st_size
    markers = rank_markers(Path(summary["staging"]))
    kernel = {
        "cells": sum(m["cells"] for m in markers),
        "seconds": max(m["seconds"] for m in markers),
        "rank_cpu_s": sum(m.get("cpu_s", m["seconds"]) for m in markers),
        "rank_peak_rss_mib": max(m.get("max_rss_bytes", 0) for m in markers) / MIB,
    }
    kernel["gcups"] = kernel["cells"] / kernel["seconds"] / 1e9 if kernel["seconds"] else 0.0
    stages = []
    launch = 0.0
    for name, start, end in task_intervals(state.state_details.flow_run_id):
        use = sampler.window(start, end)
        stage = {"stage": name, "wall_s": end - start, "cpu_s": use["cpu_s"],
                 "peak_rss_mib": use["peak_rss_bytes"] / MIB, "reads_per_s": reads / max(end - start, 1e-9)}
        if name in ("ingest-reads", "encode-reads"):
            stage["mb_per_s"] = in_bytes / MIB / max(end - start, 1e-9)
        if name == "align":
            stage["cpu_s"] = max(stage["cpu_s"], kernel["rank_cpu_s"])
            stage["peak_rss_mib"] = max(stage["peak_rss_mib"], kernel["rank_peak_rss_mib"])
            stage["gcups"] = kernel["gcups"]
            launch = max(end - start - kernel["seconds"], 0.0)
        stages.append(stage)
    in_tasks = sum(s["wall_s"] for s in stages)
    orchestration = max(wall - in_tasks, 0.0) + launch
    accuracy = summary["accuracy"]["fraction_correct"] if summary["accuracy"] else None
    record.update(status="measured", reads=reads, input_bytes=in_bytes, wall_s=wall, work_s=wall - orchestration,
                  orchestration_s=orchestration, reads_per_s=reads / wall, kernel=kernel, stages=stages,
                  peak_rss_mib=max(s["peak_rss_mib"] for s in stages), accuracy=accuracy,
                  cpu_s=sum(s["cpu_s"] for s in stages))
    return record
