"""The reference FASTA packed in one streaming pass: the same bases as the record reader,
in any block size, and every bad reference refused with file, line and what was expected."""

import gzip

import numpy as np
import pytest

from hpc.genome import genome_from_codes, open_genome
from tasks.genomics.encoding import to_codes
from tasks.genomics.fastx import FastxFormatError, read_fastx
from tasks.genomics import reference
from tasks.genomics.reference import pack_fasta

TEXT = (">chr1 first contig\nACGTNacgtn\nRYKM\n\n>chr2|x  second\r\nGGGG\r\nT\r\n>c3\nA\n"
        ">HLA-A*01:01:01:01\nACGTACGTAC\n")


@pytest.mark.parametrize("block", [1, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("pack_at", [1, 5, 1 << 20])  # runs packed as they come, a few together, all at the end
def test_packing_matches_the_record_reader_in_any_block_size(tmp_path, monkeypatch, block, gz, pack_at):
    monkeypatch.setattr(reference, "PACK_AT", pack_at)
    path = tmp_path / ("ref.fa.gz" if gz else "ref.fa")
    path.write_bytes(gzip.compress(TEXT.encode()) if gz else TEXT.encode())
    body = pack_fasta(path, tmp_path / "g", block=block)
    records = list(read_fastx(path))
    assert body["names"] == ["chr1", "chr2|x", "c3", "HLA-A*01:01:01:01"]  # the first word, as samtools
    assert body["names"] == [r.name for r in records] and body["lengths"] == [14, 5, 1, 10]
    genome = open_genome(tmp_path / "g")
    expected = genome_from_codes(body["names"], [to_codes(r.seq) for r in records])
    assert np.array_equal(genome.packed, expected.packed) and np.array_equal(genome.nmask, expected.nmask)
    assert genome.codes(0, genome.total).tobytes() == b"".join(to_codes(r.seq).tobytes() for r in records)


@pytest.mark.parametrize("text, line, expected", [
    (">a\nACGT\n>b\n>c\nAC\n", 3, "contig 'b' has no bases"),
    (">a\nACGT\n>b\n", 3, "contig 'b' has no bases"),
    (">a\nAC\n>b x\nGG\n>a again\nTT\n", 5, "duplicate contig name 'a' (first seen at line 1)"),
    (">a\nACGT\nAC-T\n", 3, "invalid base '-' at column 3"),
    ("ACGT\n>a\nAC\n", 1, "sequence before the first header"),
    ("@r1\nACGT\n+\nIIII\n", 1, "invalid base '@' at column 1 (FASTQ? the reference must be FASTA)"),
    (">\nACGT\n", 1, "empty contig name"),
    (">*bad\nACGT\n", 1, "contig name '*bad' cannot be written in SAM/BAM"),
    (">a\nACGTACGTACGT\n>b\nAC\n", 1, "contig 'a' is longer than 10 bases"),
])
def test_a_bad_reference_is_refused_and_leaves_nothing(tmp_path, text, line, expected):
    path = tmp_path / "ref.fa"
    path.write_text(text)
    with pytest.raises(FastxFormatError) as err:
        pack_fasta(path, tmp_path / "g", max_contig=10)
    assert err.value.line == line and expected in err.value.message, str(err.value)
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert not (tmp_path / "g").exists() or not list((tmp_path / "g").iterdir())


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "ref.fa"
    path.write_text("\n\n")
    with pytest.raises(FastxFormatError, match="no contigs"):
        pack_fasta(path, tmp_path / "g")
