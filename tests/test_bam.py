"""The sorted-BAM writer: records in any order come out sorted and indexed, through the
samtools on the PATH or pysam's; a record samtools refuses leaves nothing behind."""

import pysam
import pytest

import tasks.genomics.bam as bam_module
from tasks.genomics.bam import BamWriteError, SortedBamWriter

HEADER = "@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:c1\tLN:1000\n@SQ\tSN:c2\tLN:500\n"


def record(name, contig, pos):
    return f"{name}\t0\t{contig}\t{pos}\t60\t4M\t*\t0\t0\tACGT\tIIII\n"


@pytest.mark.parametrize("which", ["samtools on the PATH", "pysam"])
def test_records_come_out_sorted_and_indexed(tmp_path, monkeypatch, which):
    if which == "pysam":
        monkeypatch.setattr(bam_module.shutil, "which", lambda name: None)
    out = tmp_path / "out dir" / "s.bam"
    with SortedBamWriter(out, HEADER) as bam:
        bam.write([record("b", "c2", 10), record("a", "c1", 300)])
        bam.write([record("c", "c1", 5), "u\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\tIIII\n"])
    assert pysam.quickcheck(str(out)) == "" and (tmp_path / "out dir" / "s.bam.bai").is_file()
    with pysam.AlignmentFile(str(out)) as fh:
        assert [r.query_name for r in fh.fetch(until_eof=True)] == ["c", "a", "b", "u"]
        assert [r.query_name for r in fh.fetch("c1", 0, 1000)] == ["c", "a"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["s.bam", "s.bam.bai"]


def test_a_record_samtools_refuses_leaves_nothing(tmp_path):
    out = tmp_path / "s.bam"
    with pytest.raises(BamWriteError, match="samtools sort"):
        with SortedBamWriter(out, HEADER) as bam:
            bam.write([record("a", "c1", 1).replace("4M", "9M")])  # CIGAR longer than the sequence
    assert list(tmp_path.iterdir()) == []


def test_an_error_while_writing_leaves_nothing(tmp_path):
    out = tmp_path / "s.bam"
    with pytest.raises(RuntimeError, match="boom"):
        with SortedBamWriter(out, HEADER) as bam:
            bam.write([record("a", "c1", 1)])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
