"""FASTQ cut into chunks by the driver and encoded by workers in one compiled pass: the
same records as the validating line parser, the same packed bases as the reference
encoder, and the same errors with the same line numbers."""

import gzip

import numpy as np
import pytest

from hpc.codec import pack_codes, unpack_codes
from tasks.genomics.chunks import chunk_identity, chunks, encode_chunk, is_fastq
from tasks.genomics.encoding import DecodeCheckError, codes_of, name_list, to_bytes
from tasks.genomics.fastx import FastxFormatError, read_fastx


def fastq(n, eol="\n", end=True):
    text = eol.join(f"@r{i} extra\n{'ACGTNacgtRy'[i % 11] * (5 + i % 7)}\n+\n{'I' * (5 + i % 7)}".replace("\n", eol)
                    for i in range(n))
    return text + (eol if end else "")


def decoded(path, parts):
    names, seqs = [], b""
    for chunk in parts:
        shard = encode_chunk(chunk.read(path), str(path), chunk.first_line)
        names += name_list(shard.names)
        seqs += to_bytes(shard.codes())
        assert shard.lengths.sum() == shard.n_bases
    return names, seqs


@pytest.mark.parametrize("eol,end,gz", [("\n", True, False), ("\r\n", True, True), ("\n", False, True),
                                        ("\r\n", False, False)])
def test_chunks_encode_to_the_same_records(tmp_path, eol, end, gz):
    path = tmp_path / ("r.fq.gz" if gz else "r.fq")
    data = fastq(1003, eol, end).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    assert is_fastq(path)
    parts = list(chunks(path, 100, 64))
    assert len(parts) == 11 and [c.first_line for c in parts][:3] == [1, 401, 801]
    assert (parts[0].data is None) == (not gz) and parts[-1].done == 1.0
    assert sum(c.length for c in parts) == len(data)
    want = list(read_fastx(path))
    assert decoded(path, parts) == ([r.name for r in want], b"".join(r.seq for r in want))


def test_fast_path_packs_like_the_reference_encoder(tmp_path):
    rng = np.random.default_rng(3)
    lines = []
    for i in range(400):
        seq = bytes(rng.choice(np.frombuffer(b"ACGTNacgtnRYKMSWBDHVU", dtype=np.uint8), rng.integers(1, 300)))
        lines += [f"@q{i}".encode(), seq, b"+", b"#" * len(seq)]
    data = b"\n".join(lines) + b"\n"
    path = tmp_path / "r.fq"
    path.write_bytes(data)
    [chunk] = list(chunks(path, 1000, 64))
    shard = encode_chunk(chunk.read(path), str(path), 1)
    assert isinstance(shard.names, np.ndarray) and shard.names.dtype.kind == "S"  # the compiled path
    want = list(read_fastx(path))
    ref_packed, ref_nmask = pack_codes(codes_of(np.frombuffer(b"".join(r.seq for r in want), dtype=np.uint8)))
    assert np.array_equal(shard.packed, ref_packed) and np.array_equal(shard.nmask, ref_nmask)
    assert to_bytes(unpack_codes(shard.packed, shard.nmask, shard.n_bases)) == b"".join(r.seq for r in want)



@pytest.mark.parametrize("end", [b"\n", b""])
def test_the_smallest_records_fill_the_read_arrays_exactly(end):
    # nine bytes a record is the fewest the compiled parser sizes its arrays for
    n = 1000
    data = np.frombuffer(b"@r\nG\n+\nI\n" * (n - 1) + b"@z\nT\n+\nI" + end, dtype=np.uint8)
    shard = encode_chunk(data, "tiny.fq", 1)
    assert isinstance(shard.names, np.ndarray)  # the compiled path took it
    assert shard.n_reads == n and name_list(shard.names[[0, -1]]) == ["r", "z"]
    assert to_bytes(shard.codes()) == b"G" * (n - 1) + b"T"

def test_decode_check_names_the_read(tmp_path, monkeypatch):
    import tasks.genomics.chunks as fc

    path = tmp_path / "r.fq"
    path.write_text(fastq(50))
    bad_quads = fc._QUADS.copy()
    bad_quads[0x00, 1] = ord("C")  # decodes AAAA as ACAA: read r0 (AAAAA) no longer decodes back
    monkeypatch.setattr(fc, "_QUADS", bad_quads)
    [chunk] = list(chunks(path, 100, 64))
    with pytest.raises(DecodeCheckError, match=r"shard 7: read 0 \('r0'\) does not decode to its input"):
        encode_chunk(chunk.read(path), str(path), 1, shard_no=7)


def test_size_limit_cuts_at_record_boundaries(tmp_path):
    path = tmp_path / "r.fq"
    path.write_text(fastq(5000))
    parts = list(chunks(path, 10_000, 0.01))  # 2 * 0.01 MiB per chunk at most
    assert len(parts) > 1 and all(c.length <= 0.02 * 2**20 for c in parts)
    assert all(bytes(c.read(path)[:1]) == b"@" for c in parts)
    assert len(decoded(path, parts)[0]) == 5000
    one, other = parts[0].read(path), parts[1].read(path)
    assert chunk_identity(parts[0], one) == chunk_identity(parts[0], one.copy()) != chunk_identity(parts[0], other)


def test_errors_in_a_later_chunk_name_the_global_line(tmp_path):
    lines = fastq(300).splitlines()
    lines[4 * 250 + 3] = "II"  # record r250's quality is short; header at line 1001
    path = tmp_path / "bad.fq"
    path.write_text("\n".join(lines) + "\n")
    parts = list(chunks(path, 100, 64))
    with pytest.raises(FastxFormatError, match=r"bad.fq:1004: record 'r250': sequence has \d+ bases but quality has 2"):
        encode_chunk(parts[2].read(path), str(path), parts[2].first_line)
    (tmp_path / "x.fa").write_text(">c\nACGT\n")
    assert not is_fastq(tmp_path / "x.fa")


def test_blank_lines_and_odd_records_take_the_validating_path(tmp_path):
    path = tmp_path / "r.fq"
    path.write_text("@a\nACGT\n+\nIIII\n@b desc\nAC\n+b\nII\n\n\n")
    [chunk] = list(chunks(path, 100, 64))
    shard = encode_chunk(chunk.read(path), str(path), 1)
    assert name_list(shard.names) == ["a", "b"] and to_bytes(shard.codes()) == b"ACGTAC"


def test_truncated_gzip_is_reported_by_the_chunk_reader(tmp_path):
    data = gzip.compress(fastq(20_000).encode())
    path = tmp_path / "cut.fq.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FastxFormatError, match=r"cut.fq.gz: gzip stream is corrupt or truncated"):
        list(chunks(path, 1000, 64))


def reference_cuts(data: bytes, want: int, limit: int) -> list[tuple[int, int, int]]:
    """(first line, offset, length) of each chunk, cut in plain Python: ``want`` records, or
    the records before the one that would take the chunk past ``limit`` bytes."""
    ends = [i + 1 for i, b in enumerate(data) if b == 10][3::4]  # ends of whole records
    cuts, start, nrec, line, last = [], 0, 0, 1, 0
    for end in ends:
        if end - start > limit and nrec:
            cuts.append((line, start, last - start))
            line, start, nrec = line + 4 * nrec, last, 0
        nrec, last = nrec + 1, end
        if nrec == want or end - start > limit:
            cuts.append((line, start, end - start))
            line, start, nrec = line + 4 * nrec, end, 0
    if len(data) > start and data[start:].strip():
        cuts.append((line, start, len(data) - start))
    return cuts


@pytest.mark.parametrize("block", [61, 997, 4096, 1 << 20])
@pytest.mark.parametrize("want,limit_mb", [(7, 64), (100, 64), (10_000, 0.002), (3, 0.0005)])
def test_cuts_do_not_depend_on_the_read_block(tmp_path, monkeypatch, block, want, limit_mb):
    monkeypatch.setattr("tasks.genomics.chunks.BLOCK", block)
    data = fastq(777, end=False).encode() + b"\n@tail\nAC"  # ends in a broken record, kept for the parser
    path = tmp_path / "r.fq"
    path.write_bytes(data)
    got = [(c.first_line, c.offset, c.length) for c in chunks(path, want, limit_mb)]
    assert got == reference_cuts(data, want, int(2 * limit_mb * 2**20))


def test_fasta_reads_are_written_as_shards_with_records(tmp_path):
    """FASTA reads (parsed by the driver into batches) go through the same shard writer."""
    from hpc.manifest import load_npz_verified
    from tasks.genomics.encoding import EncodedShard
    from tasks.storage.shards import completed, encode_shard_file, read_batches

    path = tmp_path / "reads.fa"
    path.write_text(">a one\nACGT\nNNac\n>b\nGGTTa\n>c\nT\n")
    batches = list(read_batches(path, 2, 64))
    assert [names for names, _ in batches] == [["a", "b"], ["c"]]
    records = [encode_shard_file(i, names, seqs, str(tmp_path)) for i, (names, seqs) in enumerate(batches)]
    assert [(r["reads"], r["bases"], r["first"], r["last"]) for r in records] == [(2, 13, "a", "b"), (1, 1, "c", "c")]
    assert completed(tmp_path, "reads", 0, reads=2, first="a", last="b") == records[0]
    shard = EncodedShard.from_arrays(load_npz_verified(tmp_path, records[0]))
    assert shard.names == ["a", "b"] and to_bytes(shard.codes()) == b"ACGTNNACGGTTA"
