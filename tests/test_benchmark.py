"""The pipeline benchmark: grid, cost model, and a tiny grid run whose report must show
exactly the recorded measurements."""

import csv
import json
from pathlib import Path

import pytest

from tasks.bench_cost import amdahl, load_instances, pareto, project, serial_fraction
from tasks.bench_grid import Config, one_factor_grid
from tasks.bench_report import HEADLINE, headline_rows, parse_md_table

BASE = Config(1, 2500, 2, 2, "cpu", "local")


def test_one_factor_grid_varies_one_setting_at_a_time():
    grid = one_factor_grid(BASE, {"scale": [1, 4], "ranks": [2, 1], "kernel": ["cpu", "scalar"]})
    assert [v for _, v in grid] == ["base", "scale", "ranks", "kernel"]
    assert grid[1][0] == Config(4, 2500, 2, 2, "cpu", "local")
    assert grid[2][0].ranks == 1 and grid[3][0].kernel == "scalar"


def test_amdahl_and_serial_fraction():
    assert serial_fraction(10.0, 5.0) == 0.0  # perfect halving
    assert serial_fraction(10.0, 10.0) == 1.0
    assert serial_fraction(10.0, 6.0) == pytest.approx(0.2)
    assert serial_fraction(None, 5.0) is None
    assert amdahl(100.0, 0.2, 4) == pytest.approx(40.0)


def record(kernel="cpu"):
    return {"config": {**BASE.as_dict(), "kernel": kernel}, "reads": 1000, "kernel": {"cells": 4e9, "rank_cpu_s": 4.0},
            "stages": [{"stage": "ingest-reads", "wall_s": 1.0, "cpu_s": 1.0},
                       {"stage": "encode-reads", "wall_s": 1.0, "cpu_s": 2.0},
                       {"stage": "collect", "wall_s": 0.5, "cpu_s": 0.5}]}


def test_projection_per_million_reads():
    cpu_box = {"type": "c.big", "vcpus": 8, "gpus": 0, "gpu_model": None, "usd_per_hour": 3.6}
    row = project(record(), cpu_box, 0.0, 0.5, 2.0, {})
    # serial 1.5 s + Ray 2.0 / 8 + align 4.0 * (0.5 + 0.5 / 8), per 1000 reads, times 1000
    assert row["seconds_per_m_reads"] == pytest.approx((1.5 + 0.25 + 2.25) * 1000)
    assert row["usd_per_m_reads"] == pytest.approx(4000 / 3600 * 3.6)
    gpu_box = {"type": "g.big", "vcpus": 8, "gpus": 2, "gpu_model": "H100", "usd_per_hour": 36}
    gpu = project(record(), gpu_box, 0.0, 0.0, 2.0, {"H100": 100.0}, gpu=True)
    # scoring share 4e9 / 2e9 = 2 s of the 4 s moves to 2 GPUs at 100 GCUPS: 0.02 s
    assert gpu["seconds_per_m_reads"] == pytest.approx((1.5 + 0.25 + 2.0 / 8 + 0.02) * 1000)
    other = project(record(), {**gpu_box, "gpu_model": "A10G"}, 0.0, 0.0, 2.0, {"H100": 100.0}, gpu=True)
    assert other["seconds_per_m_reads"] is None and "no measurement of a A10G" in other["note"]


def test_pareto_front():
    pts = [{"seconds_per_m_reads": t, "usd_per_m_reads": c, "id": i}
           for i, (t, c) in enumerate([(10, 5), (20, 2), (15, 6), (30, 1), (40, 3)])]
    assert [p["id"] for p in pareto(pts)] == [0, 1, 3]


def test_instances_file_is_valid_and_dated(tmp_path):
    data = load_instances(Path("bench/instances.json"))
    assert data["prices_as_of"] and any(i["gpus"] for i in data["instances"])
    bad = tmp_path / "i.json"
    bad.write_text(json.dumps({"prices_as_of": "x", "instances": [{"type": "a", "vcpus": "8", "gpus": 0,
                                                                    "usd_per_hour": 1}]}))
    with pytest.raises(ValueError, match=r"instances\[0\].vcpus"):
        load_instances(bad)


@pytest.mark.integration
def test_tiny_grid_report_shows_the_recorded_measurements(prefect_harness, tmp_path):
    from flows.benchmark import PipelineBenchmarkParams, pipeline_benchmark

    params = PipelineBenchmarkParams(work=str(tmp_path), genome=60_000, reads=300, scales=[1, 2], shard_sizes=[150],
                                     ray_workers=[2], ranks=[2, 1], kernels=["cpu", "cuda"], backends=["local"])
    result = pipeline_benchmark(params)
    folder = Path(result["folder"])
    recorded = json.loads((folder / "measurements.json").read_text())["records"]
    assert [r["status"] for r in recorded] == ["measured", "measured", "measured", "not measured: no GPU"]
    for r in recorded[:3]:
        stages = {s["stage"] for s in r["stages"]}
        assert {"encode-reads", "candidate-windows", "align", "collect"} <= stages
        assert r["wall_s"] >= r["work_s"] > 0 and r["kernel"]["cells"] > 0 and r["accuracy"] >= 0.9
    assert recorded[1]["reads"] == 2 * recorded[0]["reads"] == 600

    report = (folder / "report.md").read_text()
    table = parse_md_table(report, "## Headline")
    expected = headline_rows(recorded)
    assert len(table) == len(expected)
    for shown, want in zip(table, expected):
        for col in HEADLINE:
            value = want[col]
            text = "" if value is None else (f"{value:,}" if isinstance(value, int) else str(value))
            assert shown[col] == text, (col, shown, want)
    with open(folder / "configs.csv") as fh:
        assert [row["wall_s"] for row in csv.DictReader(fh)] == [str(w["wall_s"] or "") for w in expected]
    assert "not measured: no GPU" in report
    assert "NVIDIA H100" in report  # the recorded device measurement, named
    for plot in result["plots"]:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {Path(p).name for p in result["plots"]} == {"stage_times.png", "throughput_vs_ranks.png", "cost_vs_time.png"}
