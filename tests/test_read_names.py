"""Repeated read names are refused at encode, across shards, naming both places."""

import numpy as np
import pytest

from tasks.genomics.chunks import encode_chunk
from tasks.genomics.encoding import name_hashes, repeated_name_candidates
from tasks.genomics.fastx import FastxFormatError
from tasks.storage.shards import check_unique_names, encode_shard_file, read_batches


def test_equal_names_hash_equally_whatever_the_array_width():
    wide = np.array([b"r1", b"a-much-longer-name"])
    assert name_hashes(wide)[0] == name_hashes(["r1"])[0] == name_hashes(np.array([b"r1"]))[0]
    assert len(set(name_hashes([f"read{i}" for i in range(10_000)]).tolist())) == 10_000
    assert repeated_name_candidates([name_hashes(["a", "b"]), name_hashes(["c", "a", "b"])]) == [(0, 3), (1, 4)]


def write(root, shards):
    entries = []
    for no, names in enumerate(shards):
        entries.append(encode_shard_file(no, names, [b"ACGT"] * len(names), str(root)))
    return entries


def test_a_name_repeated_in_another_shard_names_both_lines(tmp_path):
    entries = write(tmp_path, [["r1", "r2", "r3"], ["r4", "r2"]])
    for e, first in zip(entries, (1, 13)):  # as the FASTQ encoder records them
        e["first_line"] = first
    with pytest.raises(FastxFormatError) as err:
        check_unique_names(tmp_path, entries, "reads.fq")
    assert str(err.value) == ("reads.fq:17: read name 'r2' repeats the read at line 5; expected unique read names "
                              "(reads sharing a name cannot be told apart in SAM/BAM)")


def test_fasta_reads_are_named_by_record_and_unique_names_pass(tmp_path):
    entries = write(tmp_path / "a", [["x", "y"], ["z", "x"]])
    with pytest.raises(FastxFormatError, match=r"reads.fa: record 4: read name 'x' repeats the read at record 1"):
        check_unique_names(tmp_path / "a", entries, "reads.fa")
    check_unique_names(tmp_path / "b", write(tmp_path / "b", [["x", "y"], ["z"]]), "reads.fa")


@pytest.mark.parametrize("odd", [False, True])
def test_a_name_longer_than_sam_allows_is_refused_with_its_line(odd):
    """Both FASTQ parsers (the compiled one, and the line parser that takes over for odd input)."""
    records = [("r1", "ACGT"), ("r" * 255, "ACGT"), ("r3", "ACGT")]
    text = "".join(f"@{n}\n{s}\n+\n{'I' * len(s)}\n" for n, s in records) + ("\n\n" if odd else "")
    with pytest.raises(FastxFormatError, match=r"^reads.fq:5: read name is 255 bytes; expected at most 254"):
        encode_chunk(np.frombuffer(text.encode(), dtype=np.uint8), "reads.fq", 1)


def test_a_fasta_read_name_longer_than_sam_allows_is_refused(tmp_path):
    path = tmp_path / "reads.fa"
    path.write_text(">r1\nACGT\n>" + "n" * 300 + "\nACGT\n")
    with pytest.raises(FastxFormatError, match=r"reads.fa:3: read name is 300 bytes; expected at most 254"):
        list(read_batches(path, 10, 1.0))


def _hash_shards(rng, n_shards, per_shard, planted):
    """Random name hashes in shards, with ``planted``: (earlier, later) read numbers made equal."""
    every = rng.integers(0, 2**63, n_shards * per_shard, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    for a, b in planted:
        every[b] = every[a]
    return every


@pytest.mark.parametrize("planted", [[(5, 399_990), (123_456, 123_457)], [(0, 70_000), (70_000, 300_001)], []])
def test_many_names_are_checked_through_bucket_files_with_the_same_answer(tmp_path, monkeypatch, planted):
    import tracemalloc

    from tasks.storage import shards

    every = _hash_shards(np.random.default_rng(7), 40, 10_000, planted)
    want = repeated_name_candidates([every])
    assert want == sorted(planted, key=lambda ab: ab[1])  # the in-memory answer, as planted
    monkeypatch.setattr(shards, "IN_MEMORY_NAMES", 1 << 10)
    monkeypatch.setattr(shards, "BUCKET_NAMES", 1 << 14)  # 32 buckets of about 12,500 names

    def one_shard_at_a_time():
        for k in range(40):
            yield every[k * 10_000:(k + 1) * 10_000].copy()

    tracemalloc.start()
    try:
        got = shards.repeated_hashes(one_shard_at_a_time(), every.shape[0], tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == want
    assert peak < 2 * 2**20, peak  # all 400,000 hashes sorted at once: 9.6 MB and more
    assert list(tmp_path.iterdir()) == []  # the bucket files and their folder are gone


def test_a_repeated_name_is_found_through_bucket_files_too(tmp_path, monkeypatch):
    from tasks.storage import shards

    monkeypatch.setattr(shards, "IN_MEMORY_NAMES", 2)
    monkeypatch.setattr(shards, "BUCKET_NAMES", 1)
    entries = write(tmp_path, [["r1", "r2", "r3"], ["r4", "r2"]])
    for e, first in zip(entries, (1, 13)):
        e["first_line"] = first
    with pytest.raises(FastxFormatError) as err:
        check_unique_names(tmp_path, entries, "reads.fq")
    assert str(err.value).startswith("reads.fq:17: read name 'r2' repeats the read at line 5;")
    assert not list(tmp_path.glob(".name-check-*"))
