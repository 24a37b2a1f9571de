"""Cost model: project the measured pipeline onto EC2 instance types. Pure functions.

Assumptions (the report prints them next to the numbers):
- per-read cost is the marginal cost between the two largest data sizes measured with the
  base settings, so fixed per-run costs (worker start-up, JIT caches) do not inflate it;
- one vCPU there does the work of one core of the machine that measured;
- stages that run in one process (ingest, index, stage, collect) take their measured
  marginal wall time whatever the instance;
- Ray stages (encode, candidates) and the align stage spread their marginal CPU time over
  the instance's vCPUs at the core utilization measured here (CPU time / (wall x cores));
- on a GPU instance the DP scoring share of the align stage (cells / the measured 1-thread
  CPU GCUPS) runs at the GPU's measured GCUPS times its GPU count; the traceback stays on
  the CPU. A GPU model without a measurement gets no GPU projection;
- orchestration (Prefect, Ray start, job launch or queue) is a fixed cost per run and is
  left out of the per-million-read figures; the report gives it separately.
"""

from __future__ import annotations

import json
from pathlib import Path

READS_PER_30X_HUMAN = 620e6  # 3.1 Gbp x 30 / 150 bp
# The published anchor the cost table is read against: a GPU pipeline on AWS spot instances.
ANCHOR_USD_PER_30X = 2.6

SERIAL_STAGES = ("ingest-reference", "ingest-reads", "index-reference", "stage", "collect")
RAY_STAGES = ("encode-reads", "candidate-windows")


def load_instances(path: Path) -> dict:
    data = json.loads(Path(path).read_text())
    for i, inst in enumerate(data.get("instances", [])):
        for key, kind in (("type", str), ("vcpus", int), ("gpus", int), ("usd_per_hour", (int, float))):
            if not isinstance(inst.get(key), kind):
                raise ValueError(f"{path}: instances[{i}].{key} is {inst.get(key)!r}; expected {kind}")
    if "prices_as_of" not in data:
        raise ValueError(f"{path}: field 'prices_as_of' is missing; prices need a date")
    return data


def marginal_profile(small: dict, large: dict) -> dict:
    """Per-read marginal costs between two runs of the same settings at different sizes."""
    dn = large["reads"] - small["reads"]
    if dn <= 0:
        raise ValueError("marginal_profile needs a larger second run")
    a = {s["stage"]: s for s in small["stages"]}
    b = {s["stage"]: s for s in large["stages"]}
    cfg = large["config"]

    def per_read(key, names):
        return max(sum(b[n][key] for n in names if n in b) - sum(a[n][key] for n in names if n in a), 0.0) / dn

    def utilization(names, cores):
        wall = sum(b[n]["wall_s"] for n in names if n in b)
        return min(1.0, sum(b[n]["cpu_s"] for n in names if n in b) / (wall * cores)) if wall else 1.0

    return {
        "reads": [small["reads"], large["reads"]],
        "serial_s": per_read("wall_s", SERIAL_STAGES),
        "ray_cpu_s": per_read("cpu_s", RAY_STAGES), "ray_util": utilization(RAY_STAGES, cfg["ray_workers"]),
        "align_cpu_s": max(large["kernel"]["rank_cpu_s"] - small["kernel"]["rank_cpu_s"], 0.0) / dn,
        "align_util": utilization(("align",), cfg["ranks"]),
        "cells": (large["kernel"]["cells"] - small["kernel"]["cells"]) / dn,
    }


def project(profile: dict, inst: dict, cpu1_gcups: float, gpu_gcups: dict[str, float], gpu: bool = False) -> dict:
    """Seconds and dollars per million reads on instance ``inst``; ``gpu`` moves the DP
    scoring onto the instance's GPUs (the ``cuda`` kernel)."""
    v = inst["vcpus"]
    row = {"instance": inst["type"], "vcpus": v, "gpus": inst["gpus"], "usd_per_hour": inst["usd_per_hour"],
           "kernel": "cuda" if gpu else "cpu", "seconds_per_m_reads": None, "usd_per_m_reads": None,
           "usd_per_30x_human": None, "note": ""}
    ray = profile["ray_cpu_s"] / (v * profile["ray_util"])
    if gpu:
        g = gpu_gcups.get(inst.get("gpu_model") or "") if inst["gpus"] else None
        if g is None:
            row["note"] = (f"not projected: no measurement of a {inst.get('gpu_model')} GPU" if inst["gpus"]
                           else "not projected: no GPU on this instance")
            return row
        score_cpu = profile["cells"] / (cpu1_gcups * 1e9)
        align = (max(profile["align_cpu_s"] - score_cpu, 0.0) / (v * profile["align_util"])
                 + profile["cells"] / (g * 1e9 * inst["gpus"]))
        row["note"] = f"scoring on {inst['gpus']} x {inst['gpu_model']} at {g:.0f} GCUPS each (measured on one)"
    else:
        align = profile["align_cpu_s"] / (v * profile["align_util"])
    seconds = (profile["serial_s"] + ray + align) * 1e6
    usd = seconds / 3600 * inst["usd_per_hour"]
    row.update(seconds_per_m_reads=seconds, usd_per_m_reads=usd, usd_per_30x_human=usd * READS_PER_30X_HUMAN / 1e6)
    return row


def pareto(points: list[dict]) -> list[dict]:
    """Points not beaten on both time and cost by another point (ties kept once)."""
    ok = [p for p in points if p.get("seconds_per_m_reads") is not None]
    front = []
    for p in sorted(ok, key=lambda p: (p["seconds_per_m_reads"], p["usd_per_m_reads"])):
        if not front or p["usd_per_m_reads"] < front[-1]["usd_per_m_reads"]:
            front.append(p)
    return front
