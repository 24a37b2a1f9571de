"""FASTQ cut into chunks by the driver and parsed with numpy by workers: the same records
as the validating line parser, and the same errors with the same line numbers."""

import gzip

import pytest

from tasks.fastq_chunks import chunk_identity, chunks, is_fastq, parse_chunk
from tasks.fastx import FastxFormatError, read_fastx


def fastq(n, eol="\n", end=True):
    text = eol.join(f"@r{i} extra\n{'ACGTN'[i % 5] * (5 + i % 7)}\n+\n{'I' * (5 + i % 7)}".replace("\n", eol)
                    for i in range(n))
    return text + (eol if end else "")


@pytest.mark.parametrize("eol,end,gz", [("\n", True, False), ("\r\n", True, True), ("\n", False, True)])
def test_chunks_parse_to_the_same_records(tmp_path, eol, end, gz):
    path = tmp_path / ("r.fq.gz" if gz else "r.fq")
    data = fastq(1003, eol, end).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    assert is_fastq(path)
    parts = list(chunks(path, 100, 64))
    assert len(parts) == 11 and [line for line, _ in parts][:3] == [1, 401, 801]
    names, seqs = [], b""
    for line, chunk in parts:
        n, bases, lengths = parse_chunk(chunk, str(path), line)
        names += n
        seqs += bases.tobytes()
        assert lengths.sum() == bases.shape[0]
    want = list(read_fastx(path))
    assert names == [r.name for r in want] and seqs == b"".join(r.seq for r in want)


def test_size_limit_cuts_at_record_boundaries(tmp_path):
    path = tmp_path / "r.fq"
    path.write_text(fastq(5000))
    parts = list(chunks(path, 10_000, 0.01))  # 2 * 0.01 MiB per chunk at most (plus one block)
    assert len(parts) > 1 and all(chunk.startswith(b"@") for _, chunk in parts)
    assert sum(len(parse_chunk(c, "r.fq", line)[0]) for line, c in parts) == 5000
    assert chunk_identity(1, b"abc") == chunk_identity(1, b"abc") != chunk_identity(1, b"abd")


def test_errors_in_a_later_chunk_name_the_global_line(tmp_path):
    lines = fastq(300).splitlines()
    lines[4 * 250 + 3] = "II"  # record r250's quality is short; header at line 1001
    path = tmp_path / "bad.fq"
    path.write_text("\n".join(lines) + "\n")
    parts = list(chunks(path, 100, 64))
    line, chunk = parts[2]
    with pytest.raises(FastxFormatError, match=r"bad.fq:1004: record 'r250': sequence has \d+ bases but quality has 2"):
        parse_chunk(chunk, str(path), line)
    assert not is_fastq(tmp_path / "x.fa") if (tmp_path / "x.fa").write_text(">c\nACGT\n") else False


def test_truncated_gzip_is_reported_by_the_chunk_reader(tmp_path):
    data = gzip.compress(fastq(20_000).encode())
    path = tmp_path / "cut.fq.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FastxFormatError, match=r"cut.fq.gz: gzip stream is corrupt or truncated"):
        list(chunks(path, 1000, 64))
