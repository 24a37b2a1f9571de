"""The BAM path: the kernel's records are byte for byte what samtools makes of the same SAM
lines; the sorted writer gives samtools sort's order whether it holds the records in
memory, spills them to buckets, or re-splits a bucket of reads piled on one place; its
index answers region queries as samtools index's does; BGZF reads back with gzip; an error
leaves nothing behind."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest

from hpc.codec import pack_codes
from tasks.genomics.bam import BamWriteError, SortedBamWriter
from tasks.genomics.bgzf import BLOCK_INPUT, BgzfWriter
from tasks.genomics.encoding import compress_quals, text_rows
from tasks.genomics.merge import SliceBases
from tasks.genomics.records import bam_bytes, bam_slices, sam_bytes
from tasks.genomics.sam import sam_header
from test_records import random_shard


def samtools(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["samtools", *args], input=stdin, capture_output=True, check=True).stdout


def shard(seed: int, mates: int = 2, fasta: bool = False, n: int = 300):
    tn, tl, names, seqs, quals, rows, by_read, reads = random_shard(np.random.default_rng(seed), mates, n, fasta)
    return tn, [tl[t] for t in tn], rows, reads


def sam_of(tn, lengths, parts, rg="s1") -> bytes:
    tnames = text_rows(np.array([t.encode() for t in tn], dtype=np.bytes_))
    return sam_header(tn, lengths).encode() + b"".join(sam_bytes(rows, reads, tnames, rg)[0] for rows, reads in parts)


def bam_records_of(bam_stream: bytes) -> bytes:
    """The record bytes of an uncompressed BAM stream: everything after the header."""
    (l_text,) = struct.unpack_from("<i", bam_stream, 4)
    p = 8 + l_text
    (n_ref,) = struct.unpack_from("<i", bam_stream, p)
    p += 4
    for _ in range(n_ref):
        (l_name,) = struct.unpack_from("<i", bam_stream, p)
        p += 8 + l_name
    return bam_stream[p:]


@pytest.mark.parametrize("mates,fasta,seed", [(2, False, 1), (1, True, 2), (2, True, 3), (1, False, 4)])
def test_records_are_what_samtools_makes_of_the_sam_lines(tmp_path, mates, fasta, seed):
    tn, lengths, rows, reads = shard(seed, mates, fasta)
    sam = tmp_path / "x.sam"
    sam.write_bytes(sam_of(tn, lengths, [(rows, reads)]))
    theirs = bam_records_of(gzip.decompress(samtools("view", "--no-PG", "-u", str(sam))))
    data, starts, keys = bam_bytes(rows, reads, "s1")
    assert starts[0] == 0 and starts[-1] == data.shape[0] and keys.shape[0] == starts.shape[0] - 1
    assert data.tobytes() == theirs


@pytest.mark.parametrize("mates,size", [(2, 64), (2, 51), (1, 37), (2, 1000)])
def test_a_shard_in_slices_gives_the_same_records(mates, size):
    # slices of reads (an odd size is made even: mates stay together), each read numbered
    # within its slice; the records, their order and their keys are the whole shard's
    tn, lengths, rows, reads = shard(31, mates, n=300)
    data, starts, keys = bam_bytes(rows, reads, "s1")
    parts = list(bam_slices(rows, reads, "s1", size))
    assert len(parts) == -(-300 // (size + size % 2))
    assert b"".join(d.tobytes() for d, _, _ in parts) == data.tobytes()
    assert np.array_equal(np.concatenate([k for _, _, k in parts]), keys)
    assert [int(s[-1]) for _, s, _ in parts] == [d.shape[0] for d, _, _ in parts]


@pytest.mark.parametrize("mates,fasta", [(2, False), (1, False), (2, True)])
def test_slices_that_decode_their_own_bases_give_the_shards_records(mates, fasta):
    # the BAM writer's way: the shard's bases stay packed (qualities deflated), and each
    # slice decodes only its own; the records are those of the whole decoded shard
    tn, lengths, rows, reads = shard(33, mates, fasta, n=302)
    data, _, keys = bam_bytes(rows, reads, "s1")
    packed, nmask = pack_codes(reads.codes)
    arrays = {"packed": packed, "nmask": nmask} | ({} if fasta else {"quals_z": compress_quals(reads.quals)})
    bare = replace(reads, codes=np.empty(0, np.uint8), quals=None)
    parts = list(bam_slices(rows, bare, "s1", 37, bases=SliceBases(arrays, int(reads.lengths.sum()))))
    assert len(parts) == -(-302 // 38)
    assert b"".join(d.tobytes() for d, _, _ in parts) == data.tobytes()
    assert np.array_equal(np.concatenate([k for _, _, k in parts]), keys)


def test_a_bad_cigar_in_a_later_slice_is_named_by_its_read_in_the_shard():
    tn, lengths, rows, reads = shard(32, 2, n=300)
    bad = int(np.nonzero(rows["read"] >= 200)[0][0])
    cigars = rows["cigar"].astype("U32")
    cigars[bad] = "12Q"
    rows = {**rows, "cigar": cigars}
    with pytest.raises(ValueError, match=rf"alignment of read {int(rows['read'][bad])}: CIGAR '12Q'"):
        list(bam_slices(rows, reads, "s1", 64))


def write_sorted(path, tn, lengths, parts, **options) -> None:
    with SortedBamWriter(path, sam_header(tn, lengths).replace("SO:unsorted", "SO:coordinate"), tn, lengths,
                         **options) as bam:
        for rows, reads in parts:
            bam.submit(bam_bytes, rows, reads, "s1")


REGIONS = ["chr1", "chr1:1-100", "chr1:16000-16500", "chr1:30000-70000", "chrM:16000-16569",
           "contig_with_a_long_name_3", "chr1:99000-100000"]


def assert_like_samtools(tmp_path, ours, tn, lengths, parts) -> None:
    """Our BAM holds samtools sort's records in its order, and our index gives the records
    samtools index's gives, region by region."""
    sam = tmp_path / "all.sam"
    sam.write_bytes(sam_of(tn, lengths, parts))
    theirs = tmp_path / "theirs.bam"
    samtools("sort", "--no-PG", "-o", str(theirs), str(sam))
    samtools("index", str(theirs))
    assert samtools("view", str(ours)) == samtools("view", str(theirs))
    assert samtools("idxstats", str(ours)) == samtools("idxstats", str(theirs))
    for region in REGIONS:
        assert samtools("view", str(ours), region) == samtools("view", str(theirs), region), region
    assert sorted(p.name for p in ours.parent.iterdir() if p.name.startswith(ours.name)) == [ours.name,
                                                                                              f"{ours.name}.bai"]


@pytest.mark.parametrize("memory_bytes,emit_bytes", [(64 << 20, 4 << 20), (40_000, 4 << 20), (4_000, 4 << 20),
                                                     (64 << 20, 3_000), (40_000, 1)],
                         ids=["in memory", "buckets", "many buckets", "in memory, sorted in pieces",
                              "buckets, one record at a time"])
def test_sorted_and_indexed_like_samtools(tmp_path, monkeypatch, memory_bytes, emit_bytes):
    # emit_bytes: sorted records handed to BGZF and the index in pieces of about that size
    monkeypatch.setattr("tasks.genomics.bam.EMIT_BYTES", emit_bytes)
    parts = []
    for seed in (11, 12, 13):
        tn, lengths, rows, reads = shard(seed, n=400)
        parts.append((rows, reads))
    out = tmp_path / "out dir" / "s.bam"
    write_sorted(out, tn, lengths, parts, memory_bytes=memory_bytes, threads=2)
    assert_like_samtools(tmp_path, out, tn, lengths, parts)


def test_the_index_is_the_same_with_its_chunks_merged_in_steps(tmp_path, monkeypatch):
    """The index merges its chunks every MERGE_EVERY runs of records, to hold one entry for them,
    not three arrays a run: the BAI is byte for byte the one merged once at the end."""
    monkeypatch.setattr("tasks.genomics.bam.EMIT_BYTES", 1)  # a run per record: many runs
    parts = [shard(seed, n=300)[2:] for seed in (31, 32)]
    tn, lengths = shard(31, n=300)[:2]
    made = {}
    for every in (1 << 30, 3):
        monkeypatch.setattr("tasks.genomics.bai.MERGE_EVERY", every)
        out = tmp_path / str(every) / "s.bam"
        write_sorted(out, tn, lengths, parts, memory_bytes=40_000)
        made[every] = (out.read_bytes(), out.with_name("s.bam.bai").read_bytes())
    assert made[3] == made[1 << 30]
    assert_like_samtools(tmp_path, tmp_path / "3" / "s.bam", tn, lengths, parts)


def test_once_the_buckets_are_cut_an_added_batch_is_not_held(tmp_path):
    # the first batches are held until the budget (four of them) is passed, and cut the
    # buckets; every later batch goes straight to its buckets: the writer keeps none of it
    tn, lengths, rows, reads = shard(21, n=400)
    data, starts, keys = bam_bytes(rows, reads, "s1")
    out = tmp_path / "s.bam"
    with SortedBamWriter(out, sam_header(tn, lengths).replace("SO:unsorted", "SO:coordinate"), tn, lengths,
                         memory_bytes=4 * data.shape[0]) as bam:
        for _ in range(5):
            bam.add(data, starts, keys)
        tracemalloc.start()
        try:
            for _ in range(3):
                bam.add(data.copy(), starts, keys)  # a copy the writer would have to keep
            held = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    assert held < data.shape[0] // 2, held
    assert samtools("view", "-c", str(out)) == f"{8 * keys.shape[0]}\n".encode()


def test_reads_piled_on_one_place_are_split_by_rank(tmp_path):
    """Amplicon-like data: most records at one position, so one coordinate bucket holds
    nearly all of them and must be split again to sort within the budget."""
    parts = []
    for seed in (21, 22):
        tn, lengths, rows, reads = shard(seed, n=400)
        pile = np.random.default_rng(seed).random(rows["read"].shape[0]) < 0.9
        rows["contig"][pile], rows["wstart"][pile], rows["r_start"][pile] = 0, 5000, 0
        parts.append((rows, reads))
    out = tmp_path / "s.bam"
    write_sorted(out, tn, lengths, parts, memory_bytes=30_000)
    assert_like_samtools(tmp_path, out, tn, lengths, parts)


def test_a_bad_cigar_fails_naming_it_and_leaves_nothing(tmp_path):
    tn, lengths, rows, reads = shard(31)
    rows["cigar"] = rows["cigar"].copy()
    rows["cigar"][3] = "12Q"
    out = tmp_path / "s.bam"
    with pytest.raises(ValueError, match=r"CIGAR '12Q' is not a CIGAR"):
        write_sorted(out, tn, lengths, [(rows, reads)])
    assert list(tmp_path.iterdir()) == []


def test_an_error_while_writing_leaves_nothing(tmp_path):
    tn, lengths, rows, reads = shard(32)
    with pytest.raises(RuntimeError, match="boom"):
        with SortedBamWriter(tmp_path / "s.bam", sam_header(tn, lengths), tn, lengths, memory_bytes=4_000) as bam:
            bam.submit(bam_bytes, rows, reads, "s1")
            bam.submit(bam_bytes, rows, reads, "s1")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("threads", [1, 2])
def test_bgzf_reads_back_and_its_blocks_are_where_it_says(tmp_path, threads):
    rng = np.random.default_rng(5)
    pieces = [rng.integers(0, 4, int(n), dtype=np.uint8) for n in rng.integers(0, 3 * BLOCK_INPUT, 12)]
    pieces.append(np.frombuffer(os.urandom(2 * BLOCK_INPUT + 17), dtype=np.uint8))  # incompressible: stored
    path = tmp_path / "x.gz"
    with open(path, "wb") as fh:
        bgzf = BgzfWriter(fh, threads=threads)
        for p in pieces:
            bgzf.write(p)
        bgzf.close()
    raw = path.read_bytes()
    stream = b"".join(p.tobytes() for p in pieces)
    assert gzip.decompress(raw) == stream and bgzf.position == len(stream)
    offsets = bgzf.block_offsets
    assert len(offsets) == -(-len(stream) // BLOCK_INPUT) + 1 and offsets[-1] == len(raw) - 28
    for a, b in zip(offsets, [*offsets[1:], len(raw)]):
        assert raw[a:a + 4] == b"\x1f\x8b\x08\x04" and struct.unpack_from("<H", raw, a + 16)[0] == b - a - 1


def test_a_contig_past_what_a_bai_holds_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(BamWriteError, match=r"contig 'chr1' is 536,870,912 bp; a BAI index holds .* --bam false"):
        SortedBamWriter(tmp_path / "s.bam", "@HD\tVN:1.6\n", ["chrM", "chr1"], [16_569, 1 << 29])
    assert list(tmp_path.iterdir()) == []


def test_a_bam_run_on_such_a_reference_fails_before_reads_are_encoded(tmp_path):
    import json

    from hpc.genome import GENOME_JSON, GENOME_VERSION
    from tasks.seed import require_bam_contigs
    from tasks.storage.index_cache import IndexFiles

    (tmp_path / GENOME_JSON).write_text(json.dumps({"version": GENOME_VERSION, "names": ["chr1", "chr2"],
                                                    "lengths": [1_000, 600_000_000]}))
    with pytest.raises(BamWriteError, match=r"contig 'chr2' is 600,000,000 bp; a BAI index holds"):
        require_bam_contigs(IndexFiles(str(tmp_path), str(tmp_path / "k15-w5")))
    (tmp_path / GENOME_JSON).write_text(json.dumps({"version": GENOME_VERSION, "names": ["chr1"], "lengths": [5]}))
    require_bam_contigs(IndexFiles(str(tmp_path), str(tmp_path / "k15-w5")))  # nothing to refuse
