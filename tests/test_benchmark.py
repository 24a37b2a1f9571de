"""The pipeline benchmark: grid, cost model, and a tiny grid run whose report must show
exactly the recorded measurements."""

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from bench.cost import load_instances, marginal_profile, pareto, project
from bench.grid import Config, one_factor_grid
from bench.report import HEADLINE, headline_rows, parse_md_table
from tasks.genomics.paf import Truth, truth_from_name

BASE = Config(1, 2500, 2, 2, "cpu", "local")


def test_one_factor_grid_varies_one_setting_at_a_time():
    grid = one_factor_grid(BASE, {"scale": [1, 4], "ranks": [2, 1], "kernel": ["cpu", "scalar"]})
    assert [v for _, v in grid] == ["base", "scale", "ranks", "kernel"]
    assert grid[1][0] == Config(4, 2500, 2, 2, "cpu", "local")
    assert grid[2][0].ranks == 1 and grid[3][0].kernel == "scalar"


def run(reads, scale_cpu):
    """A measured run whose costs grow with ``reads``: a fixed part plus a part per read."""
    return {"config": BASE.as_dict(), "reads": reads,
            "kernel": {"cells": 1e6 + 40_000 * reads, "rank_cpu_s": 1.0 + 2e-3 * reads},
            "stages": [{"stage": "ingest-reads", "wall_s": 0.5 + 1e-4 * reads, "cpu_s": 0.5 + 1e-4 * reads},
                       {"stage": "encode-reads", "wall_s": 2.0 + scale_cpu * reads / 2, "cpu_s": 3.0 + scale_cpu * reads},
                       {"stage": "align", "wall_s": 1.0 + 1.25e-3 * reads, "cpu_s": 1.0 + 2e-3 * reads},
                       {"stage": "collect", "wall_s": 0.2 + 1e-4 * reads, "cpu_s": 0.2 + 1e-4 * reads}]}


def test_marginal_profile_leaves_fixed_costs_out():
    p = marginal_profile(run(1000, 1e-3), run(5000, 1e-3))
    assert p["serial_s"] == pytest.approx(2e-4)  # ingest + collect per read
    assert p["ray_cpu_s"] == pytest.approx(1e-3) and p["align_cpu_s"] == pytest.approx(2e-3)
    assert p["cells"] == pytest.approx(40_000)
    assert p["align_util"] == pytest.approx((1.0 + 10.0) / ((1.0 + 6.25) * 2))
    with pytest.raises(ValueError):
        marginal_profile(run(5000, 1e-3), run(1000, 1e-3))


def test_projection_per_million_reads():
    profile = {"serial_s": 1e-4, "ray_cpu_s": 8e-4, "ray_util": 0.5, "align_cpu_s": 4e-3, "align_util": 1.0,
               "cells": 4e4}
    cpu_box = {"type": "c.big", "vcpus": 8, "gpus": 0, "gpu_model": None, "usd_per_hour": 3.6}
    row = project(profile, cpu_box, 2.0, {})
    # per read: 1e-4 serial + 8e-4 / (8 * 0.5) + 4e-3 / 8, times a million
    assert row["seconds_per_m_reads"] == pytest.approx((1e-4 + 2e-4 + 5e-4) * 1e6)
    assert row["usd_per_m_reads"] == pytest.approx(800 / 3600 * 3.6)
    assert row["usd_per_30x_human"] == pytest.approx(800 / 3600 * 3.6 * 620)  # 620M reads of 150 bp
    gpu_box = {"type": "g.big", "vcpus": 8, "gpus": 2, "gpu_model": "H100", "usd_per_hour": 36}
    gpu = project(profile, gpu_box, 2.0, {"H100": 100.0}, gpu=True)
    # the scoring share, 4e4 cells / 2 GCUPS = 2e-5 s, moves to 2 GPUs at 100 GCUPS each
    expected = 1e-4 + 2e-4 + (4e-3 - 2e-5) / 8 + 4e4 / 200e9
    assert gpu["seconds_per_m_reads"] == pytest.approx(expected * 1e6)
    other = project(profile, {**gpu_box, "gpu_model": "A10G"}, 2.0, {"H100": 100.0}, gpu=True)
    assert other["seconds_per_m_reads"] is None and "no measurement of a A10G" in other["note"]
    none = project(profile, cpu_box, 2.0, {"H100": 100.0}, gpu=True)
    assert none["seconds_per_m_reads"] is None and "no GPU" in none["note"]


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
                                     ray_workers=[2], ranks=[2, 1], kernels=["cpu", "cuda"], backends=["local"],
                                     warmup=False)
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
    cost = parse_md_table(report, "## Cost")
    assert {row["instance"] for row in cost} >= {"c6i.4xlarge", "p5.48xlarge"}
    p5_gpu = next(row for row in cost if row["instance"] == "p5.48xlarge" and row["kernel"] == "cuda")
    assert float(p5_gpu["seconds_per_m_reads"]) > 0 and "H100" in p5_gpu["note"]
    c6i = next(row for row in cost if row["instance"] == "c6i.4xlarge")
    assert float(c6i["usd_per_30x_human"]) == pytest.approx(float(c6i["usd_per_m_reads"]) * 620, rel=0.02)
    assert "about $2.6 per 30x sample" in report.split("## Cost")[1]
    assert any(row["pareto"] == "yes" for row in cost)
    assert "NVIDIA H100" in report  # the recorded device measurement, named
    for plot in result["plots"]:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {Path(p).name for p in result["plots"]} == {"stage_times.png", "throughput_vs_ranks.png", "cost_vs_time.png"}


def _throughput_result(reads: int, ours_s: float, mm2_s: float, rank_rss: int) -> dict:
    stages = {"ingest reads": 0.5, "encode (Ray)": 8.0, "candidate windows (Ray)": 16.0, "stage": 0.1,
              "align job (local)": 24.0, "collect": 25.0}
    score = {"reads": reads, "correct": reads - 10, "by_mate": {1: [reads // 2, reads // 2 - 5]}, "proper": reads,
             "wrong": {60: 0, 30: 1, 10: 5, 1: 6}, "placed": {60: reads - 20, 30: reads - 15, 10: reads - 12, 1: reads - 11},
             "mapq0": [11, 4], "expected": 5.25}
    return {"reads": reads, "ours_s": ours_s, "mm2_s": mm2_s, "mm2_rss": 500 * 2**20,
            "stages": {k: {"stage": k, "seconds": v} for k, v in stages.items()},
            "peaks": {"flow (driver)": (900 * 2**20, 1), "align rank": (rank_rss, 2)}, "ours": score, "mm2": score}


def test_score_sam_counts_wrong_reads_beside_what_their_mapq_says(tmp_path):
    from bench.ecoli import score_sam

    sam = tmp_path / "x.sam"
    rows = [("chrA_1001_1201_0_1_0_0_0:0:0_0:0:0_1", 67, 1001, 60, 131),  # mate 1 right, mate 2 right
            ("chrA_5001_5201_0_1_0_0_0:0:0_0:0:0_2", 67, 9001, 10, 131),  # mate 1 wrong at MAPQ 10
            ("chrA_7001_7201_0_1_0_0_0:0:0_0:0:0_3", 67, 9001, 0, 131)]  # mate 1 wrong at MAPQ 0: a tie
    lines = ["@SQ\tSN:chrA\tLN:20000"]
    for name, flag1, pos1, mapq, flag2 in rows:
        lines.append(f"{name}\t{flag1}\tchrA\t{pos1}\t{mapq}\t150M\t=\t1\t0\t{'A' * 150}\t*")
        truth2 = int(name.split("_")[2])
        lines.append(f"{name}\t{flag2 | 16}\tchrA\t{truth2}\t20\t150M\t=\t1\t0\t{'A' * 150}\t*")
    sam.write_text("\n".join(lines) + "\n")
    s = score_sam(sam)
    assert (s["reads"], s["correct"], s["wrong"][1], s["wrong"][10], s["wrong"][30], s["mapq0"]) == (6, 4, 1, 1, 0, [1, 1])
    assert s["expected"] == pytest.approx(1e-6 + 0.1 + 3 * 0.01)  # MAPQ 60, 10 and three mates at 20
    assert s["random"] == [0, 0, 0]

    junk = "rand_0_0_0_0_1_1_0:0:0_0:0:0_9"  # dwgsim's random reads: no origin, counted apart
    sam.write_text("\n".join(lines + [f"{junk}\t77\t*\t0\t0\t*\t*\t0\t0\t{'A' * 150}\t*",
                                      f"{junk}\t137\tchrA\t500\t12\t150M\t*\t0\t0\t{'A' * 150}\t*"]) + "\n")
    again = score_sam(sam)
    assert again["random"] == [2, 1, 1] and (again["reads"], again["correct"]) == (6, 4)


def test_score_sam_finds_an_art_mate_mapped_single_end_by_its_name_s_suffix(tmp_path):
    from bench.art import art_truth
    from bench.ecoli import score_sam

    art = tmp_path / "art.sam"
    art.write_text("@SQ\tSN:chrA\tLN:5000\n"
                   "chrA-7/1\t99\tchrA\t1001\t99\t150=\t=\t1200\t350\tACGT\tIIII\n"
                   "chrA-7/2\t147\tchrA\t1201\t99\t150=\t=\t1001\t-350\tACGT\tIIII\n")
    mapped = tmp_path / "single.sam"  # R1 and R2 each mapped on their own: mate 0, names keep /1 and /2
    mapped.write_text("@SQ\tSN:chrA\tLN:5000\n"
                      f"chrA-7/1\t0\tchrA\t1001\t60\t150M\t*\t0\t0\t{'A' * 150}\t*\n"
                      f"chrA-7/2\t16\tchrA\t3001\t60\t150M\t*\t0\t0\t{'A' * 150}\t*\n")
    s = score_sam(mapped, art_truth(art))
    assert (s["reads"], s["correct"], s["wrong"][60]) == (2, 1, 1)  # mate 2 placed 1,800 bp off


def similar(a: bytes, b: bytes) -> bool:
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b)) <= 0.05 * len(a) + 1


def test_the_library_set_s_reads_are_their_fragment_then_the_adapter(tmp_path):
    from bench.library import ADAPTER_R1, ADAPTER_R2, COMPLEMENT, write_library

    rng = np.random.default_rng(3)
    genome = bytes(b"ACGT"[i] for i in rng.integers(0, 4, 20_000))
    ref = tmp_path / "ref.fa"
    ref.write_bytes(b">chrA some words\n" + genome + b"\n")
    files = write_library(ref, tmp_path / "lib", 400)
    r1 = gzip.open(files["r1"], "rt").read().split("\n")
    r2 = gzip.open(files["r2"], "rt").read().split("\n")
    assert len(r1) == len(r2) == 4 * 400 + 1
    short = random = tails = 0
    for i in range(0, 1600, 4):
        t1, t2 = truth_from_name(r1[i][1:]), truth_from_name(r2[i][1:])
        if t1.contig == "rand":
            random += 1
            continue
        seq1, seq2 = r1[i + 1].encode(), r2[i + 1].encode()
        assert (t1.strand, t2.strand) == ("+", "-") and r1[i][:-2] == r2[i][:-2]
        assert similar(seq1[:40], genome[t1.start:t1.start + 40])  # the fragment's first bases, a few substituted
        if t1.start != t2.start:  # a fragment of 150 bases or more: mate 2 reads back from its end
            assert similar(seq2, genome[t2.start:t2.start + 150].translate(COMPLEMENT)[::-1])
        else:  # shorter than the read: both mates read on into their adapter, then poly-G
            short += 1
            if b"G" * 8 in seq1[-20:]:  # the whole adapter inside the read
                assert any(ADAPTER_R1[j:j + 10] in seq1 for j in (0, 10, 20))
                assert any(ADAPTER_R2[j:j + 10] in seq2 for j in (0, 10, 20))
                tails += 1
    assert 100 < short < 300 and tails > 50 and random < 30


def test_art_truth_reads_each_mate_s_origin_from_art_s_sam(tmp_path):
    from bench.art import art_truth

    sam = tmp_path / "art.sam"
    sam.write_text("@HD\tVN:1.4\n@SQ\tSN:chr 1\tLN:5000\n"
                   "chr 1-7/1\t99\tchr 1\t1001\t99\t60=1I89=\t=\t1200\t350\tACGT\tIIII\n"
                   "chr 1-7/2\t147\tchr 1\t1201\t99\t70=2D80=\t=\t1001\t-350\tACGT\tIIII\n"
                   "plain\t0\tchr 1\t11\t99\t10=1X4=\t*\t0\t0\tACGT\tIIII\n")
    truth = art_truth(sam)
    assert truth[("chr 1-7", 1)] == Truth("chr 1", 1000, 1149, "+", False)  # 60 + 89 reference bases
    assert truth[("chr 1-7", 2)] == Truth("chr 1", 1200, 1352, "-", False)  # 70 + 2 deleted + 80
    assert truth[("plain", 0)].end == 25  # single-end: mate 0, as score_sam asks for it
    bad = tmp_path / "bad.sam"
    bad.write_text("r/1\t99\tchr\n")
    with pytest.raises(ValueError, match="bad.sam:1: expected a SAM record"):
        art_truth(bad)


def test_throughput_report_ratios_targets_and_memory_verdict():
    from bench.meter import TreeSampler
    from bench.throughput import cost_lines, growth_line, mean_run, peaks_by_role, report, role

    assert role("/x/python -m hpc.align_job --manifest m") == "align rank"
    assert role("ray::IDLE") == "Ray worker" and role("/usr/bin/samtools sort") == "samtools"
    assert role("ray::encode_pair_file") == "Ray worker"
    assert role("ray::DashboardAgent") == role("ray::RuntimeEnvAgent") == role("/x/raylet --node") == "Ray daemons"
    sampler = TreeSampler()
    sampler.peak_by_pid.update({1: ("python -m bench throughput", 171), 2: ("ray::IDLE", 300), 3: ("ray::IDLE", 350),
                                4: ("ray::DashboardAgent", 90)})
    assert peaks_by_role(sampler, own_pid=1) == {"Ray worker": (350, 2), "Ray daemons": (90, 1)}
    lines = report(_throughput_result(2_000_000, 93.0, 31.0, 700 * 2**20))
    wall = next(line for line in lines if "wall, end to end" in line).split()
    assert wall[-2:] == ["3.00x", "2.5x"]
    core = next(line for line in lines if "seeding + alignment" in line).split()
    assert core[-3:] == ["31.0s", "1.29x", "1.5x"]  # (16 + 24) s of the stages against minimap2's 31 s
    assert lines[-1] == "  every process under 1 GiB: yes"
    assert next(line for line in lines if "wrong at MAPQ >=" in line).split()[-2:] == ["0/1/5/6"] * 2
    assert next(line for line in lines if "wrong at MAPQ 0" in line).split()[-2:] == ["4/11", "4/11"]
    assert next(line for line in lines if "as many as MAPQ says" in line).split()[-4:] == ["6", "(5.2)"] * 2
    grown = growth_line([_throughput_result(2_000_000, 93.0, 31.0, 470 * 2**20)],
                        [_throughput_result(10_000_000, 400.0, 150.0, 490 * 2**20)])
    assert grown == ("peak RSS by process, 2M -> 10M reads: flow (driver) 900 -> 900 MiB, "
                     "align rank 470 -> 490 MiB (+20)")
    spread = growth_line([_throughput_result(2_000_000, 93.0, 31.0, m * 2**20) for m in (470, 480)],
                         [_throughput_result(10_000_000, 400.0, 150.0, m * 2**20) for m in (475, 478)])
    assert spread == ("peak RSS by process, 2M -> 10M reads (2 and 2 runs): flow (driver) 900 -> 900 MiB, "
                      "align rank 470-480 -> 475-478 MiB")  # inside the spread: no "+"
    assert mean_run([_throughput_result(2_000_000, 90.0, 30.0, 1), _throughput_result(2_000_000, 96.0, 32.0, 1)])[
        "ours_s"] == 93.0
    over = report(_throughput_result(2_000_000, 93.0, 31.0, 1100 * 2**20))
    assert over[-1] == "  every process under 1 GiB: no (align rank)"
    # Cost: (93 - 23) s x 2 cores over 1.8M more reads = 77.8 core-seconds per million reads.
    cost = cost_lines(_throughput_result(200_000, 23.0, 4.0, 1), _throughput_result(2_000_000, 93.0, 31.0, 1), 2)
    assert "helixflow 78 core-seconds per million reads (minimap2 30)" in cost[0]
    inst = load_instances(Path(__file__).parents[1] / "bench" / "instances.json")["instances"][0]
    row = next(line for line in cost if line.split()[0] == inst["type"]).split()
    assert abs(float(row[3]) - 77.78 / inst["vcpus"] / 3600 * inst["usd_per_hour"]) < 1e-4  # $ per million reads


def test_head_to_head_counts_reads_one_tool_alone_misplaces_and_the_ties_among_them():
    from bench.scale import head_to_head
    from tasks.genomics.paf import Hit

    def hit(name, start, mapq=0, nm=1, qend=150, score=290, primary=True):
        return Hit(name, 150, 0, qend, "+", "chr1", 10**6, start, start + 150, 149, 150, mapq, score, nm, "150M",
                   primary)

    names = [f"chr1_{1001 + 1000 * i}_{1150 + 1000 * i}_+_{i}" for i in range(10)]
    truth = [1000 + 1000 * i for i in range(10)]
    ours = {names[0]: [hit(names[0], truth[0])],  # both right
            names[1]: [hit(names[1], 500_000)],  # ours alone wrong: a tie (MAPQ 0, same NM, same span)
            names[2]: [hit(names[2], 500_000, mapq=20)],  # ours alone wrong, confidently: no tie
            names[3]: [hit(names[3], truth[3])],  # theirs alone wrong, with more edits: no tie
            names[4]: [hit(names[4], 700_000)],  # both wrong
            names[6]: [hit(names[6], 900_000, nm=0)],  # ours alone wrong, on a copy closer than the truth: a tie
            names[7]: [hit(names[7], 950_000, nm=2)],  # ours alone wrong, more edits than the truth: no tie
            # ours alone wrong, clipped: by edits no tie, but our own secondary at the truth scores the same
            names[8]: [hit(names[8], 960_000, qend=148), hit(names[8], truth[8], qend=148, primary=False)],
            names[9]: [hit(names[9], 970_000, qend=148), hit(names[9], truth[9], score=280, primary=False)]}
    theirs = {n: [hit(n, t, nm=2 if n in names[8:] else 1)] for n, t in zip(names, truth)}
    theirs[names[3]] = [hit(names[3], 600_000, nm=3)]
    theirs[names[4]] = [hit(names[4], 800_000)]
    assert names[5] not in ours  # ours left names[5] unmapped: wrong, and no tie
    assert head_to_head(ours, theirs) == {"ours_only_wrong": 7, "ours_only_wrong_ties": 3,
                                          "theirs_only_wrong": 1, "theirs_only_wrong_ties": 0}


def test_scale_sets_are_summed_per_size_and_kind():
    import pandas as pd

    from bench.scale import over_sets

    frame = pd.DataFrame([
        {"genome_mbp": 100.0, "kind": "repeats", "correct": 0.9990, "mm2_correct": 0.9994, "ours_only_wrong": 50,
         "ours_only_wrong_ties": 50, "theirs_only_wrong": 40, "theirs_only_wrong_ties": 39},
        {"genome_mbp": 100.0, "kind": "repeats", "correct": 0.9996, "mm2_correct": 0.9990, "ours_only_wrong": 30,
         "ours_only_wrong_ties": 29, "theirs_only_wrong": 60, "theirs_only_wrong_ties": 60},
        {"genome_mbp": 100.0, "kind": "random", "correct": 1.0, "mm2_correct": 0.99995, "ours_only_wrong": 0,
         "ours_only_wrong_ties": 0, "theirs_only_wrong": 1, "theirs_only_wrong_ties": 0}])
    lines = over_sets(frame).splitlines()
    assert lines[1] == ("  100 Mbp, repeats, 2 sets: correct helixflow 99.9300% (from 99.9000% to 99.9600%), "
                        "minimap2 99.9200% (from 99.9000% to 99.9400%); alone wrong: helixflow 80 (79 ties), "
                        "minimap2 100 (99 ties)")
    assert lines[2].startswith("  100 Mbp, random, 1 sets: correct helixflow 100.0000%")


def test_a_process_s_peak_between_two_samples_is_its_own():
    """A process's peak is the kernel's high-water mark, caught whenever it is sampled: a
    200-MiB spike freed before the only sample still counts (a sampled RSS would miss it)."""
    import subprocess
    import sys
    import time

    from bench.meter import TreeSampler

    code = "import numpy as np, time; a = np.ones(200 * 2**20 // 8); del a; time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(4)  # the spike is over
        with TreeSampler(interval=600) as sampler:  # a sample on entry and one on exit, none between
            pass
        name, peak = sampler.peak_by_pid[child.pid]
        assert peak >= 200 * 2**20 and "np.ones" in name
    finally:
        child.kill()
        child.wait()
