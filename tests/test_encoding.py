import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hpc.codec import pack_codes, reverse_complement, unpack_codes
from tasks.genomics.encoding import decode_sequences, encode_sequences, first_mismatch, to_bytes, to_codes

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
