"""Paired-end reads of a real genome (E. coli K-12 MG1655, dwgsim's error profiles) through
the whole flow into a sorted, indexed BAM with read groups, which samtools and Picard accept;
a samplesheet of several samples, outputs named by sample, one index for all."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pysam
import pytest

from flows.params import PipelineParams
from flows.pipeline import align_reads
from tasks.genomics.paf import truth_from_name

pytestmark = pytest.mark.integration

GENOME = Path(__file__).resolve().parents[1] / ".helixflow" / "data" / "MG1655-K12.fasta.gz"
PAIRS = 4000


@pytest.fixture(scope="module")
def ecoli(tmp_path_factory):
    if not GENOME.is_file():
        pytest.fail(f"{GENOME} is missing: `make test-deps` (deployments/install-test-deps.sh) unpacks it")
    root = tmp_path_factory.mktemp("ecoli")
    ref = root / "MG1655.fa"
    subprocess.run(f"gzip -dc {GENOME} > {ref}", shell=True, check=True)
    subprocess.run(["dwgsim", "-e", "0.002-0.01", "-E", "0.003-0.015", "-d", "350", "-s", "35", "-N", str(PAIRS),
                    "-1", "150", "-2", "150", "-r", "0.001", "-y", "0", "-z", "11", str(ref), str(root / "sim")],
                   check=True, capture_output=True)
    return {"reference": ref, "r1": root / "sim.bwa.read1.fastq.gz", "r2": root / "sim.bwa.read2.fastq.gz",
            "root": root}


@pytest.fixture(scope="module")
def paired_run(prefect_harness, ray_cluster, ecoli):
    work = ecoli["root"] / "run with spaces"
    params = PipelineParams(reads=str(ecoli["r1"]), reads2=str(ecoli["r2"]), reference=str(ecoli["reference"]),
                            output=str(work / "out"), staging_dir=str(work / "fsx"), backend="local", ranks=2,
                            shard_size=3000, sample="NA 1/2", library="lib1", sam=True)
    state = align_reads(params, return_state=True)
    assert state.is_completed(), state.message
    return state.result(), params


def read_records(bam: Path) -> list:
    with pysam.AlignmentFile(str(bam), "rb") as fh:
        return list(fh.fetch(until_eof=True))


def test_pairs_land_where_they_came_from_with_mate_fields(paired_run):
    summary, _ = paired_run
    bam = Path(summary["bam"])
    assert bam.name == "NA_1_2.bam" and Path(f"{bam}.bai").is_file()
    records = [r for r in read_records(bam) if not r.is_secondary]
    assert len(records) == 2 * PAIRS == summary["reads"]
    correct = {1: 0, 2: 0}
    proper = 0
    for r in records:
        assert r.is_paired and (r.is_read1 != r.is_read2) and r.get_tag("RG") == "NA 1/2"
        assert r.query_qualities is not None and len(r.query_qualities) == r.query_length
        mate = 1 if r.is_read1 else 2
        if not r.is_unmapped:
            truth = truth_from_name(r.query_name, mate, r.query_length)
            start, end = r.reference_start, r.reference_end
            ok = (r.reference_name == truth.contig and ("-" if r.is_reverse else "+") == truth.strand
                  and min(end, truth.end) - max(start, truth.start) >= 0.1 * (max(end, truth.end) - min(start, truth.start)))
            correct[mate] += ok
        if r.is_proper_pair:
            proper += 1
            assert r.next_reference_name == r.reference_name and r.template_length != 0
            assert r.mate_is_reverse != r.is_reverse
    assert correct[1] >= 0.97 * PAIRS and correct[2] >= 0.97 * PAIRS, correct
    assert proper >= 0.95 * 2 * PAIRS
    acc = summary["accuracy"]
    assert [m["correct"] for m in acc["by_mate"]] == [correct[1], correct[2]]


def test_bam_is_sorted_with_read_group_and_program(paired_run):
    summary, params = paired_run
    bam = summary["bam"]
    assert pysam.quickcheck(bam) == ""
    with pysam.AlignmentFile(bam, "rb") as fh:
        header = fh.header.to_dict()
        assert header["HD"]["SO"] == "coordinate"
        assert header["RG"] == [{"ID": "NA 1/2", "SM": "NA 1/2", "LB": "lib1", "PL": "ILLUMINA"}]
        (pg,) = header["PG"]
        assert pg["PN"] == "helixflow" and pg["VN"] and "--reads2" in pg["CL"] and "--sample NA 1/2" in pg["CL"]
        keys = [(r.reference_id if not r.is_unmapped or r.reference_id >= 0 else 1 << 30, r.reference_start)
                for r in fh.fetch(until_eof=True)]
    assert keys == sorted(keys)


def test_samtools_flagstat_agrees_with_our_qc(paired_run):
    summary, _ = paired_run
    qc = summary["qc"]
    lines = pysam.flagstat(summary["bam"]).splitlines()
    counts = {line.split(" + ")[1].split(" ", 1)[1].split(" (")[0]: int(line.split(" + ")[0]) for line in lines}
    assert counts["in total"] == qc["records"]
    assert counts["primary"] == qc["primary"] == 2 * PAIRS
    assert counts["secondary"] == qc["secondary"]
    assert counts["mapped"] == qc["mapped"] and counts["primary mapped"] == qc["primary_mapped"]
    assert counts["paired in sequencing"] == qc["paired"] and counts["read1"] == qc["read1"] == PAIRS
    assert counts["properly paired"] == qc["properly_paired"]
    assert counts["with itself and mate mapped"] == qc["with_itself_and_mate_mapped"]
    assert counts["singletons"] == qc["singletons"]
    assert counts["with mate mapped to a different chr"] == qc["mate_on_different_contig"]
    assert 300 <= qc["insert_size"]["median"] <= 400
    saved = json.loads(Path(summary["summary"]).read_text())
    assert saved["qc"]["properly_paired"] == qc["properly_paired"] and Path(summary["summary"]).name == "NA_1_2.summary.json"


def test_picard_validates_the_bam_strictly_against_the_reference(paired_run, ecoli):
    summary, _ = paired_run
    picard = shutil.which("PicardCommandLine")
    assert picard, "picard-tools is missing: make test-deps installs it"
    ref = ecoli["reference"]
    if not Path(f"{ref}.fai").is_file():
        pysam.faidx(str(ref))
    dictionary = ref.with_suffix(".dict")
    if not dictionary.is_file():
        pysam.dict("-o", str(dictionary), str(ref))
    bam = ecoli["root"] / "validate.bam"  # Debian's wrapper splits its arguments at spaces
    bam.unlink(missing_ok=True)
    bam.symlink_to(summary["bam"])
    Path(f"{bam}.bai").unlink(missing_ok=True)
    Path(f"{bam}.bai").symlink_to(summary["bam"] + ".bai")
    done = subprocess.run([picard, "ValidateSamFile", f"I={bam}", f"R={ref}", "MODE=VERBOSE",
                           "VALIDATION_STRINGENCY=STRICT", "IGNORE_WARNINGS=false"],
                          capture_output=True, text=True, env={**os.environ, "JAVA_TOOL_OPTIONS": "-Xmx1g"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "No errors found" in done.stdout


def test_sam_holds_the_same_records_as_the_bam(paired_run):
    summary, _ = paired_run
    with pysam.AlignmentFile(summary["sam"], "r") as fh:
        sam = sorted(r.to_string() for r in fh)
    assert sam == sorted(r.to_string() for r in read_records(Path(summary["bam"])))


def test_a_samplesheet_runs_each_sample_with_one_index(prefect_harness, ray_cluster, ecoli, tmp_path):
    few = tmp_path / "few_R1.fq"
    subprocess.run(f"gzip -dc {ecoli['r1']} | head -n 2000 > '{few}'", shell=True, check=True)
    sheet = tmp_path / "samples.csv"
    sheet.write_text(f"sample,fastq_1,fastq_2\npair/one,{ecoli['r1']},{ecoli['r2']}\nsingle one,few_R1.fq,\n")
    params = PipelineParams(samplesheet=str(sheet), reference=str(ecoli["reference"]), output=str(tmp_path / "out"),
                            staging_dir=str(tmp_path / "fsx"), backend="local", shard_size=5000)
    state = align_reads(params, return_state=True)
    assert state.is_completed(), state.message
    samples = state.result()["samples"]
    assert [s["sample"] for s in samples] == ["pair/one", "single one"]
    out = tmp_path / "out"
    names = sorted(p.name for p in out.iterdir() if p.suffix in (".bam", ".bai", ".paf", ".json"))
    assert names == ["pair_one.bam", "pair_one.bam.bai", "pair_one.paf", "pair_one.summary.json",
                     "single_one.bam", "single_one.bam.bai", "single_one.paf", "single_one.summary.json"]
    assert samples[0]["qc"]["paired"] == 2 * PAIRS and samples[1]["qc"]["paired"] == 0
    assert samples[1]["reads"] == 500 and samples[1]["mapped"] >= 490
    with pysam.AlignmentFile(samples[1]["bam"], "rb") as fh:
        assert fh.header.to_dict()["RG"][0]["SM"] == "single one"
        assert not any(r.is_paired for r in fh.fetch(until_eof=True))
    indexes = list((tmp_path / "fsx").rglob("k15-w5"))
    assert len(indexes) == 1  # one index cache for both samples


@pytest.mark.parametrize("row, words", [
    ("a,missing_R1.fq,", "samples.csv:2: fastq_1 'missing_R1.fq': file not found"),
    ("a,few.fa,", "FASTA records carry no base qualities"),
])
def test_a_bad_sample_fails_the_run_before_any_output(prefect_harness, ray_cluster, ecoli, tmp_path, row, words):
    (tmp_path / "few.fa").write_text(">r1\nACGTACGTACGTAGCTAGCTAGCATCGATCGACTAGCTACGACTAGCATCAGCA\n")
    sheet = tmp_path / "samples.csv"
    sheet.write_text(f"sample,fastq_1,fastq_2\n{row}\n")
    params = PipelineParams(samplesheet=str(sheet), reference=str(ecoli["reference"]), output=str(tmp_path / "out"),
                            staging_dir=str(tmp_path / "fsx"), backend="local")
    state = align_reads(params, return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception) as err:
        state.result()
    assert words in str(err.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_mates_that_part_fail_the_run_naming_the_record_and_leave_no_output(prefect_harness, ray_cluster, ecoli,
                                                                             tmp_path):
    short = tmp_path / "short R2.fq"  # R2 cut short, in a path with a space
    subprocess.run(f"gzip -dc {ecoli['r2']} | head -n 4000 > '{short}'", shell=True, check=True)
    params = PipelineParams(reads=str(ecoli["r1"]), reads2=str(short), reference=str(ecoli["reference"]),
                            output=str(tmp_path / "out"), staging_dir=str(tmp_path / "fsx"), backend="local",
                            shard_size=3000)
    state = align_reads(params, return_state=True)
    assert state.is_failed()
    message = str(state.result(raise_on_failure=False))
    assert message == (f"{short}: holds fewer reads than {ecoli['r1']}, which goes on at its line 6001; expected "
                       "R1 and R2 to hold the same number of reads") or message.startswith(
        f"{short}: ends after 1000 reads of this part while {ecoli['r1']} has more"), message  # the driver or a worker
    assert not (tmp_path / "out").exists()
    assert not list((tmp_path / "fsx").glob("run-*"))  # bad input: no half-made run folder


def test_an_interleaved_file_aligns_as_pairs(prefect_harness, ray_cluster, ecoli, tmp_path):
    """R1 and R2 of the first 500 pairs, record by record in one file, through --interleaved."""
    r1 = gzip_lines(ecoli["r1"], 2000)
    r2 = gzip_lines(ecoli["r2"], 2000)
    mixed = tmp_path / "il.fq"
    mixed.write_text("".join("".join(r1[i:i + 4]) + "".join(r2[i:i + 4]) for i in range(0, len(r1), 4)))
    params = PipelineParams(reads=str(mixed), interleaved=True, reference=str(ecoli["reference"]),
                            output=str(tmp_path / "out"), staging_dir=str(tmp_path / "fsx"), backend="local",
                            shard_size=300)
    state = align_reads(params, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["sample"] == "il" and summary["reads"] == 1000 and summary["qc"]["read1"] == 500
    assert summary["qc"]["properly_paired"] >= 950
    assert summary["accuracy"]["by_mate"][1]["correct"] >= 485


def gzip_lines(path: Path, n: int) -> list[str]:
    import gzip

    with gzip.open(path, "rt") as fh:
        return [next(fh) for _ in range(n)]


def test_the_summary_says_where_the_time_and_memory_went(paired_run, prefect_harness):
    summary, _ = paired_run
    saved = json.loads(Path(summary["summary"]).read_text())
    stages = {row["stage"]: row for row in saved["stages"]}
    assert list(stages)[:6] == ["ingest reads", "encode (Ray)", "candidate windows (Ray)", "stage", "align job (local)",
                                "collect"]
    assert all(row["seconds"] >= 0 and row["driver_peak_rss_mib"] > 0 for row in saved["stages"][:6])
    ranks = [stages[f"align rank {r}"] for r in range(2)]  # each rank's own figures, from its marker
    assert all(r["peak_rss_mib"] > 50 and r["cpu_seconds"] > 0 for r in ranks)
    assert saved["stages"] == summary["stages"]


def test_art_pairs_with_illumina_error_profiles_land_where_art_says(prefect_harness, ray_cluster, ecoli):
    # ART's HiSeq 2500 profile: quality-dependent substitutions and the platform's indels, and
    # names that carry no origin (ART's own SAM says where each read came from)
    from bench.art import art_truth, simulate_art
    from bench.ecoli import score_sam

    art = simulate_art(ecoli["reference"], ecoli["root"] / "art", PAIRS, seed=3)
    truth = art_truth(art["truth"])
    assert len(truth) == 2 * PAIRS
    work = ecoli["root"] / "art-run"
    params = PipelineParams(reads=str(art["r1"]), reads2=str(art["r2"]), reference=str(ecoli["reference"]),
                            output=str(work / "out"), staging_dir=str(work / "fsx"), backend="local", ranks=2,
                            shard_size=3000, sample="art")
    state = align_reads(params, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["reads"] == 2 * PAIRS and not summary["accuracy"]  # ART's names carry no origin to score
    s = score_sam(Path(summary["bam"]), truth)
    assert s["reads"] == 2 * PAIRS
    assert s["correct"] >= 0.98 * 2 * PAIRS, s  # the rest: repeat copies placed at MAPQ 0
    assert s["wrong"][30] == 0 and s["wrong"][1] <= max(5, 2 * s["expected"]), s  # MAPQ as sure as it says
    assert s["proper"] >= 0.97 * 2 * PAIRS
