"""Mapping quality on a genome with diverged repeats and N runs; SAM that samtools reads."""

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from flows.params import PipelineParams
from flows.pipeline import align_reads
from tasks.genomics.paf import Hit, is_correct, truth_from_name
from tasks.genomics.simulation import SimulatedRead, fasta_text, fastq_text, simulate_reads, simulate_reference

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def repeat_run(prefect_harness, ray_cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("repeats")
    reference = simulate_reference(3, 100_000, seed=31, repeat_fraction=0.1, repeat_divergence=0.03, n_runs=3)
    reads = simulate_reads(reference, 2000, 150, 0.006, 0.0005, seed=32)
    reference.append(("tiny", b"ACGTTGCAAGGCTTAC" * 6))  # a contig shorter than a read window
    odd = [SimulatedRead("short_read", b"ACGTACG"), SimulatedRead("all_n", b"N" * 150)]
    (root / "ref.fa").write_text(fasta_text(reference).lower())  # soft-masked: lowercase
    (root / "reads.fq.gz").write_bytes(gzip.compress(fastq_text(reads + odd).replace("\n", "\r\n").encode()))
    params = PipelineParams(reads=str(root / "reads.fq.gz"), reference=str(root / "ref.fa"),
                            output=str(root / "out"), staging_dir=str(root / "fsx"), backend="local", sam=True)
    state = align_reads(params, return_state=True)
    assert state.is_completed(), state.message
    return state.result(), reads


def test_reads_land_where_they_came_from(repeat_run):
    summary, reads = repeat_run
    assert summary["reads"] == len(reads) + 2 == summary["mapped"] + summary["unmapped"]
    correct = primaries = secondaries = 0
    for line in Path(summary["paf"]).read_text().splitlines():
        cols = line.split("\t")
        assert len(cols) == 16 and cols[4] in "+-" and 0 <= int(cols[11]) <= 60
        assert int(cols[2]) < int(cols[3]) <= int(cols[1]) and int(cols[7]) < int(cols[8]) <= int(cols[6])
        assert cols[12] in ("tp:A:P", "tp:A:S")
        if cols[12] == "tp:A:S":  # another locus of a repeat: MAPQ 0, not counted as the read's place
            assert cols[11] == "0"
            secondaries += 1
            continue
        primaries += 1
        truth = truth_from_name(cols[0])
        if truth:
            correct += is_correct(Hit.from_paf_line(line), truth)
    assert primaries == summary["mapped"] and secondaries == summary["secondary"] > 0
    assert correct / len(reads) >= 0.99


def test_unmappable_reads_are_reported_unmapped(repeat_run):
    summary, _ = repeat_run
    sam = Path(summary["sam"]).read_text().splitlines()
    records = {line.split("\t")[0]: line.split("\t") for line in sam
               if not line.startswith("@") and not int(line.split("\t")[1]) & 256}
    assert records["short_read"][1] == "4" and records["all_n"][1] == "4"
    assert len(records) == summary["reads"]


@pytest.mark.skipif(shutil.which("samtools") is None, reason="make test installs samtools")
def test_samtools_reads_the_sam(repeat_run):
    summary, _ = repeat_run
    def count(*filters):
        view = subprocess.run(["samtools", "view", "-c", *filters, summary["sam"]], capture_output=True, text=True)
        assert view.returncode == 0 and view.stderr == "", view.stderr
        return int(view.stdout)

    assert count("-F", "256") == summary["reads"]  # one primary or unmapped line per read
    assert count("-f", "256") == summary["secondary"]
    assert count("-F", "260") == summary["mapped"]
    flags = subprocess.run(["samtools", "flagstat", summary["sam"]], capture_output=True, text=True)
    assert flags.returncode == 0 and f"{summary['secondary']} + 0 secondary" in flags.stdout
