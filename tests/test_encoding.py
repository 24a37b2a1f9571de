import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpc.codec import pack_codes, reverse_complement, unpack_codes, unpack_range
from tasks.genomics.encoding import (QualityStream, compress_quals, decode_sequences, encode_sequences, first_mismatch,
                                      to_bytes, to_codes)

bases = st.text(alphabet="ACGTN", min_size=1, max_size=300).map(str.encode)


@given(st.lists(bases, min_size=1, max_size=20))
@settings(max_examples=200, deadline=None)
def test_round_trip_is_exact(seqs):
    shard = encode_sequences([f"r{i}" for i in range(len(seqs))], seqs)
    assert decode_sequences(shard) == seqs
    assert first_mismatch(shard, seqs) is None
    assert shard.packed.nbytes == (sum(map(len, seqs)) + 3) // 4


def test_decode_check_finds_a_changed_read():
    seqs = [b"ACGT", b"NNAC", b"GGGG"]
    shard = encode_sequences(["a", "b", "c"], seqs)
    shard.packed[1] ^= 0b00000011  # flip the last base (C) of read "b"
    assert first_mismatch(shard, seqs) == 1


def test_n_is_kept_by_the_mask():
    codes = to_codes(b"ANCNGT")
    packed, nmask = pack_codes(codes)
    assert to_bytes(unpack_codes(packed, nmask, 6)) == b"ANCNGT"


def test_reverse_complement():
    assert to_bytes(reverse_complement(to_codes(b"AACGTN"))) == b"NACGTT"


def test_arrays_round_trip():
    from tasks.genomics.encoding import EncodedShard

    shard = encode_sequences(["x", "y"], [b"ACG", b"TTTTN"])
    back = EncodedShard.from_arrays(shard.to_arrays())
    assert back.names == ["x", "y"] and decode_sequences(back) == [b"ACG", b"TTTTN"]
    assert np.array_equal(back.offsets, [0, 3])


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    import os
    import stat

    from hpc.files import FILE_MODE, atomic_write_text

    atomic_write_text(tmp_path / "out.txt", "x")
    mode = stat.S_IMODE(os.stat(tmp_path / "out.txt").st_mode)
    assert mode == FILE_MODE and mode & 0o044  # readable by the group and others under the usual umask


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=200), st.data())
def test_a_range_of_packed_bases_unpacks_as_the_whole_does(codes, data):
    codes = np.array(codes, dtype=np.uint8)
    packed, nmask = pack_codes(codes)
    a = data.draw(st.integers(0, codes.shape[0]))
    b = data.draw(st.integers(a, codes.shape[0]))
    assert np.array_equal(unpack_range(packed, nmask, a, b), codes[a:b])
    assert np.array_equal(unpack_range(packed, nmask, 0, codes.shape[0]), unpack_codes(packed, nmask, codes.shape[0]))


def test_qualities_taken_a_slice_at_a_time_are_the_shards():
    quals = np.random.default_rng(5).integers(33, 75, 400_000).astype(np.uint8)  # several inflate steps
    blob = compress_quals(quals)
    assert blob.shape[0] > 3 * QualityStream.STEP
    stream, sizes = QualityStream(blob), [1, 70_000, 0, 129_999, 200_000]
    parts = [stream.take(n) for n in sizes]
    stream.check_done()
    assert [p.shape[0] for p in parts] == sizes
    assert np.array_equal(np.concatenate(parts), quals)


def test_qualities_short_of_the_bases_or_past_them_are_an_error():
    blob = compress_quals(np.full(1000, 40, dtype=np.uint8))
    with pytest.raises(ValueError, match="end 1 characters short of the bases"):
        QualityStream(blob).take(1001)
    stream = QualityStream(blob)
    stream.take(990)
    with pytest.raises(ValueError, match="hold 10 characters more than the bases"):
        stream.check_done()
