import gzip

import pytest

from tasks.genomics.fastx import FastxFormatError, local_path, read_fastx


def write(tmp_path, name, text, gz=False):
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_fastq_plain_and_gzip_give_same_records(tmp_path):
    text = "@r1 desc\nACGTN\n+\nIIIII\n@r2\nacgt\n+r2\nIIII\n"
    plain = list(read_fastx(write(tmp_path, "a.fq", text)))
    gz = list(read_fastx(write(tmp_path, "a.fq.gz", text, gz=True)))
    assert [(r.name, r.seq) for r in plain] == [("r1", b"ACGTN"), ("r2", b"ACGT")]
    assert [(r.name, r.seq) for r in gz] == [(r.name, r.seq) for r in plain]


def test_fasta_multiline_crlf_lowercase_and_iupac(tmp_path):
    path = write(tmp_path, "ref.fa", ">c1 x\r\nACGTry\r\nkmsw\r\n>c2\r\nGGCC\r\n")
    records = list(read_fastx(path))
    assert [(r.name, r.seq, r.line) for r in records] == [("c1", b"ACGTNNNNNN", 1), ("c2", b"GGCC", 4)]


def test_file_uri_is_accepted(tmp_path):
    path = write(tmp_path, "with space.fa", ">c\nACGT\n")
    assert [r.seq for r in read_fastx(path.as_uri())] == [b"ACGT"]
    assert local_path(path.as_uri()) == path


def test_unsupported_scheme_names_choices():
    with pytest.raises(FastxFormatError, match="expected a local path or file://"):
        local_path("ftp://host/reads.fq")


def test_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.fq"):
        list(read_fastx(tmp_path / "nope.fq"))


def test_quality_length_mismatch_names_line_and_record(tmp_path):
    path = write(tmp_path, "bad.fq", "@r1\nACGT\n+\nIIII\n@r2\nACGT\n+\nIII\n")
    with pytest.raises(FastxFormatError) as err:
        list(read_fastx(path))
    assert f"{path}:8" in str(err.value)
    assert "'r2'" in str(err.value) and "4 bases but quality has 3" in str(err.value)


def test_truncated_record(tmp_path):
    path = write(tmp_path, "trunc.fq", "@r1\nACGT\n+\nIIII\n@r2\nACGT\n")
    with pytest.raises(FastxFormatError, match=r"trunc.fq:5: record 'r2' is truncated"):
        list(read_fastx(path))


def test_truncated_gzip_is_reported(tmp_path):
    data = gzip.compress(("@r\n" + "A" * 5000 + "\n+\n" + "I" * 5000 + "\n").encode())
    path = tmp_path / "cut.fq.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FastxFormatError, match="gzip stream is corrupt or truncated"):
        list(read_fastx(path))


def test_invalid_character_names_line_and_column(tmp_path):
    path = write(tmp_path, "bad.fa", ">c1\nACGT\nACXT\n")
    with pytest.raises(FastxFormatError, match=r"bad.fa:3: invalid base 'X' at column 3"):
        list(read_fastx(path))


def test_empty_file(tmp_path):
    path = write(tmp_path, "empty.fq", "\n\n")
    with pytest.raises(FastxFormatError, match="file is empty"):
        list(read_fastx(path))


def test_not_fastx(tmp_path):
    path = write(tmp_path, "x.txt", "hello\n")
    with pytest.raises(FastxFormatError, match=r"x.txt:1: expected a FASTA header"):
        list(read_fastx(path))
