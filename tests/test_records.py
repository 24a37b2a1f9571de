"""The SAM and PAF text of :mod:`tasks.genomics.records` (columns in, Numba writes the
lines) against a record-by-record oracle written straight from the SAM spec's rules, on
random shards: pairs and single reads, unmapped reads and mates, secondaries, mates on other
contigs, reverse strands, reads with N, FASTA (no qualities). Then pysam reads the text."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tasks.genomics.encoding import text_rows
from tasks.genomics.records import ShardReads, paf_bytes, proper_reads, sam_bytes
from tasks.genomics.sam import (FLAG_FIRST, FLAG_LAST, FLAG_MATE_REVERSE, FLAG_MATE_UNMAPPED, FLAG_PAIRED,
                                FLAG_PROPER, FLAG_REVERSE, FLAG_SECONDARY, FLAG_UNMAPPED, sam_header)

COMPLEMENT = bytes.maketrans(b"ACGTN", b"TGCAN")


@dataclass
class Al:  # one alignment, in read coordinates (the oracle's own form)
    tname: str
    tstart: int
    tend: int
    rev: bool
    primary: bool
    mapq: int
    qs: int  # on the aligned strand
    qe: int
    cigar: str
    nm: int
    score: int
    nmatch: int
    block: int


def oracle_tlen(a: Al, b: Al) -> int:
    span = max(a.tend, b.tend) - min(a.tstart, b.tstart)
    return span if (a.tstart, a.rev) <= (b.tstart, b.rev) else -span


def oracle_sam(name, seq, qual, als, rg, mates, number, mate_al, proper):
    out = []
    flag0 = 0
    rnext0, pnext0 = "*", 0
    if mates == 2:
        flag0 |= FLAG_PAIRED | (FLAG_FIRST if number == 1 else FLAG_LAST)
        if mate_al is None:
            flag0 |= FLAG_MATE_UNMAPPED
        else:
            flag0 |= FLAG_MATE_REVERSE if mate_al.rev else 0
            rnext0, pnext0 = mate_al.tname, mate_al.tstart + 1
    q = qual.decode() if qual is not None else "*"
    if not als:
        if mates == 2 and mate_al is not None:
            p = mate_al.tstart + 1
            return [f"{name}\t{flag0 | FLAG_UNMAPPED}\t{mate_al.tname}\t{p}\t0\t*\t=\t{p}\t0\t{seq.decode()}\t{q}{rg}\n"]
        return [f"{name}\t{flag0 | FLAG_UNMAPPED}\t*\t0\t0\t*\t{rnext0}\t{pnext0}\t0\t{seq.decode()}\t{q}{rg}\n"]
    own = als[0]
    for a in als:
        flag, rnext, pnext, tlen = flag0, rnext0, pnext0, 0
        flag |= (FLAG_REVERSE if a.rev else 0) | (0 if a.primary else FLAG_SECONDARY)
        if mates == 2 and mate_al is not None:
            if proper and a.primary:
                flag |= FLAG_PROPER
            if mate_al.tname == a.tname:
                rnext = "="
                tlen = oracle_tlen(own, mate_al) if a.primary and own.tname == mate_al.tname else 0
        elif mates == 2 and a.primary:
            rnext, pnext = "=", a.tstart + 1
        clip = (f"{a.qs}S" if a.qs else "") + a.cigar + (f"{len(seq) - a.qe}S" if len(seq) - a.qe else "")
        s = seq.translate(COMPLEMENT)[::-1] if a.rev else seq
        qq = (qual[::-1] if a.rev else qual).decode() if qual is not None else "*"
        out.append(f"{name}\t{flag}\t{a.tname}\t{a.tstart + 1}\t{a.mapq if a.primary else 0}\t{clip}\t{rnext}\t"
                   f"{pnext}\t{tlen}\t{s.decode()}\t{qq}\tNM:i:{a.nm}\tAS:i:{a.score}{rg}\n")
    return out


def oracle_paf(name, qlen, a: Al, tlens):
    qs, qe = (qlen - a.qe, qlen - a.qs) if a.rev else (a.qs, a.qe)
    return (f"{name}\t{qlen}\t{qs}\t{qe}\t{'-' if a.rev else '+'}\t{a.tname}\t{tlens[a.tname]}\t{a.tstart}\t{a.tend}\t"
            f"{a.nmatch}\t{a.block}\t{a.mapq if a.primary else 0}\ttp:A:{'P' if a.primary else 'S'}\t"
            f"AS:i:{a.score}\tNM:i:{a.nm}\tcg:Z:{a.cigar}\n")


def random_shard(rng, mates: int, n_reads: int, fasta: bool):
    tn = ["chr1", "chrM", "contig_with_a_long_name_3"]
    tl = {"chr1": 100_000, "chrM": 16_569, "contig_with_a_long_name_3": 5_000}
    lengths = rng.integers(30, 160, n_reads)
    if mates == 2:
        lengths[1::2] = lengths[::2]  # not required, but typical
    names = [f"pair{i // mates}" if mates == 2 else f"r{i}/{i}" for i in range(n_reads)]
    seqs = [rng.choice(np.frombuffer(b"ACGTN", np.uint8), n, p=[0.24, 0.24, 0.24, 0.24, 0.04]).tobytes() for n in lengths]
    quals = None if fasta else [rng.integers(35, 74, n).astype(np.uint8).tobytes() for n in lengths]
    cols = {k: [] for k in ("read", "strand", "contig", "wstart", "primary", "score", "q_start", "q_end", "r_start",
                            "r_end", "nmatch", "block", "nm", "cigar", "mapq", "proper")}
    by_read: list[list[Al]] = []
    proper_of = rng.random(n_reads) < 0.5
    for i, n in enumerate(lengths):
        k = rng.choice(4, p=[0.2, 0.5, 0.2, 0.1])  # alignments of this read
        als = []
        for j in range(k):
            qs = int(rng.integers(0, 10))
            qe = int(n - rng.integers(0, 10))
            c = int(rng.integers(0, 3))
            tname = tn[c]
            wstart, r_start = int(rng.integers(0, tl[tname] - 400)), int(rng.integers(0, 50))
            span = qe - qs + int(rng.integers(-3, 4))
            cigar = f"{qe - qs}M" if rng.random() < 0.7 else f"{(qe - qs) // 2}M2I{qe - qs - (qe - qs) // 2 - 2}M"
            a = Al(tname, wstart + r_start, wstart + r_start + span, bool(rng.random() < 0.5), j == 0,
                   int(rng.integers(0, 61)), qs, qe, cigar, int(rng.integers(0, 9)), int(rng.integers(-5, 320)),
                   int(rng.integers(0, 150)), span)
            als.append(a)
            for key, v in (("read", i), ("strand", int(a.rev)), ("contig", c), ("wstart", wstart),
                           ("primary", int(a.primary)), ("score", a.score), ("q_start", qs), ("q_end", qe),
                           ("r_start", r_start), ("r_end", r_start + span), ("nmatch", a.nmatch),
                           ("block", a.block), ("nm", a.nm), ("cigar", cigar), ("mapq", a.mapq),
                           ("proper", int(proper_of[i] and a.primary))):
                cols[key].append(v)
        by_read.append(als)
    rows = {k: np.array(v, dtype=np.str_ if k == "cigar" else np.int64) for k, v in cols.items()}
    for k in ("strand", "primary", "mapq", "proper"):
        rows[k] = rows[k].astype(np.uint8)
    rows["contig"] = rows["contig"].astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    lut = np.full(256, 255, np.uint8)
    for c, ch in enumerate(b"ACGTN"):
        lut[ch] = c
    codes = lut[np.frombuffer(b"".join(seqs), np.uint8)]
    reads = ShardReads(text_rows(np.array([s.encode() for s in names], dtype=np.bytes_)), lengths.astype(np.int32),
                       offsets, codes, None if fasta else np.frombuffer(b"".join(quals), np.uint8), mates)
    return tn, tl, names, seqs, quals, rows, by_read, reads


@pytest.mark.parametrize("mates,fasta,seed", [(2, False, 1), (2, True, 2), (1, False, 3), (1, True, 4), (2, False, 5)])
def test_sam_and_paf_text_equal_the_oracle(mates, fasta, seed):
    rng = np.random.default_rng(seed)
    tn, tl, names, seqs, quals, rows, by_read, reads = random_shard(rng, mates, 400, fasta)
    tnames = text_rows(np.array([t.encode() for t in tn], dtype=np.bytes_))
    proper = proper_reads(rows, reads.n)
    want_sam, want_paf = [], []
    for i, als in enumerate(by_read):
        mate_al = (by_read[i ^ 1][0] if by_read[i ^ 1] else None) if mates == 2 else None
        want_sam += oracle_sam(names[i], seqs[i], None if fasta else quals[i], als, "\tRG:Z:s1", mates, 1 + (i & 1),
                               mate_al, bool(proper[i]))
        want_paf += [oracle_paf(names[i], len(seqs[i]), a, tl) for a in als]
    text, records = sam_bytes(rows, reads, tnames, "s1")
    assert records == len(want_sam)
    assert text.decode().splitlines(keepends=True) == want_sam
    assert paf_bytes(rows, reads, tnames, np.array([tl[t] for t in tn])).decode().splitlines(keepends=True) == want_paf


def test_pysam_reads_the_records(tmp_path):
    pysam = pytest.importorskip("pysam")
    rng = np.random.default_rng(7)
    tn, tl, names, seqs, quals, rows, by_read, reads = random_shard(rng, 2, 200, False)
    text, records = sam_bytes(rows, reads, text_rows(np.array([t.encode() for t in tn], dtype=np.bytes_)), "s1")
    path = tmp_path / "x.sam"
    path.write_bytes(sam_header(tn, [tl[t] for t in tn]).encode() + text)
    with pysam.AlignmentFile(str(path), "r") as fh:
        got = list(fh.fetch(until_eof=True))
    assert len(got) == records
    lengths = sorted(int(n) for n in reads.lengths)
    assert sorted(len(r.query_sequence) for r in got if not r.is_secondary) == lengths
    for r in got:
        assert len(r.query_qualities) == len(r.query_sequence)
        if not r.is_unmapped:  # the CIGAR (with its soft clips) spans the whole read
            assert r.infer_read_length() == len(r.query_sequence) and r.get_tag("RG") == "s1"


def test_empty_shard_rows_give_unmapped_lines_only():
    rng = np.random.default_rng(0)
    tn, tl, names, seqs, quals, rows, by_read, reads = random_shard(rng, 2, 6, False)
    empty = {k: v[:0] for k, v in rows.items()}
    text, records = sam_bytes(empty, reads, text_rows(np.array([t.encode() for t in tn], dtype=np.bytes_)), None)
    assert records == 6
    assert all(line.split("\t")[1] == str(FLAG_PAIRED | FLAG_UNMAPPED | FLAG_MATE_UNMAPPED | (FLAG_FIRST if i % 2 == 0
               else FLAG_LAST)) for i, line in enumerate(text.decode().splitlines()))
    assert paf_bytes(empty, reads, text_rows(np.array([b"chr1"])), np.array([5])) == b""

