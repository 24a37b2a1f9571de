"""Cost model: project measured configurations onto EC2 instance types. Pure functions.

Assumptions (the report prints them next to the numbers):
- one vCPU there does the work of one core of the machine that measured;
- stages that run on one core (ingest, index, stage, collect) take the measured time;
- Ray stages (encode, candidates) and the align stage scale by Amdahl's law over the
  instance's vCPUs, with the serial fraction fitted from the measured 1- and 2-worker
  (Ray) and 1- and 2-rank (align) runs; their single-core time is their measured CPU time;
- on a GPU instance the DP scoring share of the align stage (cells / the measured 1-thread
  CPU GCUPS) runs at the GPU's measured GCUPS times its GPU count; the traceback stays on
  the CPU. A GPU model without a measurement gets no GPU projection;
- orchestration (Prefect, Ray start, job launch or queue) is a fixed cost per run and is
  left out of the per-million-read figures; the report gives it separately.
"""

from __future__ import annotations

import json
from pathlib import Path

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


def serial_fraction(t1: float | None, t2: float | None) -> float | None:
    """Amdahl serial fraction s from times on 1 and 2 workers: t2 = t1 * (s + (1 - s) / 2)."""
    if not t1 or not t2:
        return None
    return min(1.0, max(0.0, 2 * t2 / t1 - 1))


def amdahl(t1: float, s: float, n: int) -> float:
    return t1 * (s + (1 - s) / max(n, 1))


def project(m: dict, inst: dict, s_ray: float, s_align: float, cpu1_gcups: float,
            gpu_gcups: dict[str, float], gpu: bool = False) -> dict:
    """Seconds and dollars per million reads of measurement ``m`` on instance ``inst``;
    ``gpu`` moves the DP scoring onto the instance's GPUs (a ``cuda`` kernel run)."""
    stages = {s["stage"]: s for s in m["stages"]}
    per_m = 1e6 / m["reads"]
    serial = sum(stages[s]["wall_s"] for s in SERIAL_STAGES if s in stages)
    ray = sum(stages[s]["cpu_s"] for s in RAY_STAGES if s in stages)
    align_cpu = m["kernel"]["rank_cpu_s"]
    v = inst["vcpus"]
    row = {"config": m["config"]["label"], "instance": inst["type"], "vcpus": v, "gpus": inst["gpus"],
           "usd_per_hour": inst["usd_per_hour"], "kernel": "cuda" if gpu else m["config"]["kernel"],
           "seconds_per_m_reads": None, "usd_per_m_reads": None, "note": ""}
    if gpu:
        g = gpu_gcups.get(inst.get("gpu_model") or "") if inst["gpus"] else None
        if g is None:
            row["note"] = (f"not projected: no measurement of a {inst.get('gpu_model')} GPU" if inst["gpus"]
                           else "not projected: no GPU on this instance")
            return row
        score_cpu = m["kernel"]["cells"] / (cpu1_gcups * 1e9)
        align = amdahl(max(align_cpu - score_cpu, 0.0), s_align, v) + m["kernel"]["cells"] / (g * 1e9 * inst["gpus"])
        row["note"] = f"scoring on {inst['gpus']} x {inst['gpu_model']} at {g:.0f} GCUPS each (measured on one)"
    else:
        align = amdahl(align_cpu, s_align, v)
    seconds = (serial + amdahl(ray, s_ray, v) + align) * per_m
    row.update(seconds_per_m_reads=seconds, usd_per_m_reads=seconds / 3600 * inst["usd_per_hour"])
    return row


def pareto(points: list[dict]) -> list[dict]:
    """Points not beaten on both time and cost by another point (ties kept once)."""
    ok = [p for p in points if p.get("seconds_per_m_reads") is not None]
    front = []
    for p in sorted(ok, key=lambda p: (p["seconds_per_m_reads"], p["usd_per_m_reads"])):
        if not front or p["usd_per_m_reads"] < front[-1]["usd_per_m_reads"]:
            front.append(p)
    return front
