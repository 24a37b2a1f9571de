"""Pairs through encode: R1 + R2 (or one interleaved file) into shards of pairs, mates side
by side with their qualities; mates that part are refused, naming the record."""

import numpy as np
import pytest

from hpc.run_folder import READS, shard_path
from tasks.genomics.chunks import chunks
from tasks.genomics.encoding import EncodedShard, decode_sequences
from tasks.genomics.fastx import FastxFormatError
from tasks.genomics.pairs import pair_name
from tasks.storage.shards import encode_chunk_file, encode_pair_file


def fastq(path, records):
    path.write_text("".join(f"@{n} extra\n{s}\n+\n{q}\n" for n, s, q in records))
    return path


def load(root, shard_no=0):
    with np.load(shard_path(root, READS, shard_no), allow_pickle=False) as data:
        return EncodedShard.from_arrays(dict(data))


R1 = [("p1/1", "ACGTACGTAA", "IIIIIIIII#"), ("p2/1", "GGGCCC", "!!!!!!"), ("p3/1", "NACGT", "ABCDE")]
R2 = [("p1/2", "TTTT", "JJJJ"), ("p2/2", "CCCCCCCCA", "123456789"), ("p3/2", "ACG", "~~~")]


def test_r1_and_r2_become_one_shard_of_pairs_with_qualities(tmp_path):
    a, b = fastq(tmp_path / "r1.fq", R1), fastq(tmp_path / "r2.fq", R2)
    (c1,), (c2,) = list(chunks(a, 10, float("inf"))), list(chunks(b, 10, float("inf")))
    record = encode_pair_file(0, c1, c2, str(a), str(b), str(tmp_path))
    shard = load(tmp_path)
    assert record["reads"] == 6 and record["mates"] == 2 and shard.mates == 2
    assert shard.names == ["p1", "p1", "p2", "p2", "p3", "p3"]
    seqs = [s for pair in zip(R1, R2) for _, s, _ in pair]
    assert decode_sequences(shard) == [s.encode() for s in seqs]
    quals = shard.quals.tobytes()
    assert quals == "".join(q for pair in zip(R1, R2) for _, _, q in pair).encode()


def test_qualities_can_be_left_out(tmp_path):
    a = fastq(tmp_path / "r1.fq", R1)
    (c1,) = list(chunks(a, 10, 64))
    encode_chunk_file(0, c1, str(a), str(tmp_path), qualities=False)
    assert load(tmp_path).quals is None


def test_mates_out_of_step_name_the_record(tmp_path):
    a = fastq(tmp_path / "r1.fq", R1)
    b = fastq(tmp_path / "r2.fq", [R2[0], R2[2], R2[1]])
    (c1,), (c2,) = list(chunks(a, 10, float("inf"))), list(chunks(b, 10, float("inf")))
    with pytest.raises(FastxFormatError) as err:
        encode_pair_file(0, c1, c2, str(a), str(b), str(tmp_path))
    assert err.value.path == str(b) and err.value.line == 5
    assert "'p3/2' is not the mate of 'p2/1'" in err.value.message and f"{a}:5" in err.value.message
    assert not shard_path(tmp_path, READS, 0).exists()


def test_r2_shorter_than_r1_is_refused(tmp_path):
    a, b = fastq(tmp_path / "r1.fq", R1), fastq(tmp_path / "r2.fq", R2[:2])
    (c1,), (c2,) = list(chunks(a, 10, float("inf"))), list(chunks(b, 10, float("inf")))
    with pytest.raises(FastxFormatError) as err:
        encode_pair_file(0, c1, c2, str(a), str(b), str(tmp_path))
    assert err.value.path == str(b) and "ends after 2 reads" in err.value.message


def test_an_interleaved_file_pairs_neighbours(tmp_path):
    path = fastq(tmp_path / "il.fq", [r for pair in zip(R1, R2) for r in pair])
    (chunk,) = list(chunks(path, 10, float("inf")))
    encode_chunk_file(0, chunk, str(path), str(tmp_path), interleaved=True)
    shard = load(tmp_path)
    assert shard.mates == 2 and shard.names == ["p1", "p1", "p2", "p2", "p3", "p3"]


def test_an_interleaved_file_with_an_odd_record_count_is_refused(tmp_path):
    path = fastq(tmp_path / "il.fq", [r for pair in zip(R1, R2) for r in pair][:5])
    (chunk,) = list(chunks(path, 10, float("inf")))
    with pytest.raises(FastxFormatError) as err:
        encode_chunk_file(0, chunk, str(path), str(tmp_path), interleaved=True)
    assert err.value.line == 17 and "'p3/1' has no mate" in err.value.message


def test_an_interleaved_file_out_of_step_is_refused(tmp_path):
    path = fastq(tmp_path / "il.fq", [R1[0], R2[0], R1[1], R2[2], R1[2], R2[1]])
    (chunk,) = list(chunks(path, 10, float("inf")))
    with pytest.raises(FastxFormatError) as err:
        encode_chunk_file(0, chunk, str(path), str(tmp_path), interleaved=True)
    assert err.value.line == 13 and "'p3/2' is not the mate of 'p2/1'" in err.value.message


def test_quality_of_the_wrong_length_or_characters_names_the_line(tmp_path):
    a = fastq(tmp_path / "r1.fq", [R1[0], ("p2/1", "GGGCCC", "!!!!!")])
    (c1,) = list(chunks(a, 10, 64))
    with pytest.raises(FastxFormatError) as err:
        encode_chunk_file(0, c1, str(a), str(tmp_path))
    assert err.value.line == 8 and "quality has 5 characters" in err.value.message
    b = fastq(tmp_path / "r2.fq", [("p1/1", "ACGT", "II\x7fI")])
    (c2,) = list(chunks(b, 10, 64))
    with pytest.raises(FastxFormatError) as err:
        encode_chunk_file(0, c2, str(b), str(tmp_path))
    assert err.value.line == 4 and "expected Phred+33" in err.value.message


@pytest.mark.parametrize("name, pair", [("a/1", "a"), ("a/2", "a"), ("a/3", "a/3"), ("a", "a"), ("/1", "/1")])
def test_pair_name_drops_the_mate_suffix(name, pair):
    assert pair_name(name) == pair
