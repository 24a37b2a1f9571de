"""One shard's SAM and PAF text from the job's columns, over arrays: each field of every
record (flag, mate fields, TLEN, soft clips) is worked out in numpy, then
:mod:`hpc.kernels.text` writes the lines. No Python object per read or per alignment.

The records follow SAM's rules for pairs: a mapped read's mate fields name its mate's
primary alignment; an unmapped read whose mate is mapped sits at its mate's place (RNAME,
POS, RNEXT ``=``); a mapped read whose mate is unmapped gets RNEXT ``=`` and its own POS as
PNEXT; TLEN is the pair's span on one contig, positive for the leftmost mate (ties: the
forward one), on primary lines only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from hpc.kernels.bam import bam_bound, bam_records
from hpc.kernels.text import RNEXT_NONE, RNEXT_SAME, paf_bound, paf_text, sam_bound, sam_text
from tasks.genomics.bam import coordinate_keys
from tasks.genomics.sam import (FLAG_FIRST, FLAG_LAST, FLAG_MATE_REVERSE, FLAG_MATE_UNMAPPED, FLAG_PAIRED,
                                FLAG_PROPER, FLAG_REVERSE, FLAG_SECONDARY, FLAG_UNMAPPED)


BAM_SLICE_READS = 16_384  # reads whose BAM records are made at a time (about 5 MB of records)


def cigar_rows(cigars: np.ndarray) -> np.ndarray:
    """CIGAR strings as character rows, NUL-padded, without a copy: ``uint8`` rows of the
    ASCII bytes the ranks write (a quarter of numpy text's size), ``uint32`` rows of numpy
    text (rank outputs of older runs, and lists of ``str``)."""
    arr = np.asarray(cigars)
    if arr.dtype.kind != "S":
        arr = np.asarray(arr, dtype=np.str_)
    arr = np.ascontiguousarray(arr)
    width = max(arr.dtype.itemsize // (1 if arr.dtype.kind == "S" else 4), 1)
    return arr.view(np.uint8 if arr.dtype.kind == "S" else np.uint32).reshape(arr.shape[0], width)


@dataclass
class ShardReads:
    """What the records need of a shard's reads: names (``uint8`` rows), lengths, offsets
    into ``codes`` (base codes of every read), the qualities (None: FASTA) and ``mates``."""

    names: np.ndarray
    lengths: np.ndarray
    offsets: np.ndarray
    codes: np.ndarray
    quals: np.ndarray | None
    mates: int = 1

    @property
    def n(self) -> int:
        return int(self.lengths.shape[0])


def _i64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


def _first_rows(read: np.ndarray, n: int) -> np.ndarray:
    """Each read's first row (rows ordered by read, primary first), -1 for a read without."""
    first = np.full(n, -1, dtype=np.int64)
    idx = np.arange(read.shape[0] - 1, -1, -1)
    first[read[::-1]] = idx  # the last write per read wins: its lowest row
    return first


def proper_reads(rows: dict[str, np.ndarray], n_reads: int) -> np.ndarray:
    """Per read: whether its primary alignment is in a proper pair."""
    proper = np.zeros(n_reads, dtype=bool)
    if "proper" in rows:
        first = rows["primary"] == 1
        proper[rows["read"][first]] = rows["proper"][first].astype(bool)
    return proper


def paf_bytes(rows: dict[str, np.ndarray], reads: ShardReads, tnames: np.ndarray, tlens: np.ndarray) -> bytes:
    """The PAF lines of a shard's rows, in row order; query coordinates on the read as given
    (a reverse-strand row's span is flipped), MAPQ 0 on secondary lines."""
    return paf_text_of(rows, reads, tnames, tlens).tobytes()


def paf_text_of(rows: dict[str, np.ndarray], reads: ShardReads, tnames: np.ndarray, tlens: np.ndarray) -> np.ndarray:
    """:func:`paf_bytes` as the ``uint8`` array it is written into (no copy to ``bytes``)."""
    read = _i64(rows["read"])
    if read.shape[0] == 0:
        return np.empty(0, dtype=np.uint8)
    reverse = rows["strand"].astype(bool)
    qlen = _i64(reads.lengths[read])
    q_start = np.where(reverse, qlen - rows["q_end"], rows["q_start"])
    q_end = np.where(reverse, qlen - rows["q_start"], rows["q_end"])
    primary = rows["primary"].astype(bool)
    wstart = _i64(rows["wstart"])
    cigars = cigar_rows(rows["cigar"])
    buf = np.empty(paf_bound(read.shape[0], reads.names.shape[1], tnames.shape[1], cigars.shape[1]), dtype=np.uint8)
    n = paf_text(buf, reads.names, read, qlen, _i64(q_start), _i64(q_end), reverse, tnames, _i64(tlens),
                 _i64(rows["contig"]), wstart + rows["r_start"], wstart + rows["r_end"], _i64(rows["nmatch"]),
                 _i64(rows["block"]), _i64(np.where(primary, rows["mapq"], 0)), primary, _i64(rows["score"]),
                 _i64(rows["nm"]), cigars)
    return buf[:n]


def bam_slices(rows: dict[str, np.ndarray], reads: ShardReads, rg: str | None, size: int = BAM_SLICE_READS,
               bases: Callable[[int, int], tuple[np.ndarray, np.ndarray | None]] | None = None,
               ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`bam_bytes` of a shard ``size`` reads at a time (rows ordered by read): the same
    records in the same order, with one slice's fields and records in memory at a time.
    ``bases(start, end)``, where ``reads`` holds no bases: the codes and qualities of the
    shard's bases ``start:end``, asked for slice after slice, so one slice's are decoded at a time."""
    read = rows["read"]
    size += size % 2  # a slice holds both mates of its pairs
    for a in range(0, reads.n, size):
        b = min(a + size, reads.n)
        lo, hi = np.searchsorted(read, [a, b])
        part = {k: v[lo:hi] for k, v in rows.items()}
        part["read"] = read[lo:hi] - a
        piece = replace(reads, names=reads.names[a:b], lengths=reads.lengths[a:b], offsets=reads.offsets[a:b])
        if bases is not None:
            start, end = int(reads.offsets[a]), int(reads.offsets[b - 1] + reads.lengths[b - 1])
            codes, quals = bases(start, end)
            piece = replace(piece, codes=codes, quals=quals, offsets=piece.offsets - start)
        yield bam_bytes(part, piece, rg, first_read=a)


def _record_fields(rows: dict[str, np.ndarray], reads: ShardReads) -> dict[str, np.ndarray]:
    """The fields of a shard's SAM/BAM records, read by read (each read's rows, primary
    first; one unmapped record for a read without), as the text and BAM kernels take them."""
    n = reads.n
    read = _i64(rows["read"])
    nrows = read.shape[0]

    def col(key: str) -> np.ndarray:  # a row column and, at index nrows, a zero for "no row"
        return np.append(_i64(rows[key]), 0)

    contig, strand, primary = col("contig"), col("strand").astype(bool), col("primary").astype(bool)
    tstart, tend = col("wstart") + col("r_start"), col("wstart") + col("r_end")
    first = _first_rows(read, n)
    lone = np.nonzero(first < 0)[0]  # reads without an alignment: one unmapped line each
    first[lone] = nrows

    # Records: every row, and an unmapped record per lone read, in read order.
    rec_read = np.concatenate([read, lone])
    r = np.concatenate([np.arange(nrows), np.full(lone.shape[0], nrows)])
    order = np.argsort(rec_read, kind="stable")
    rec_read, r = rec_read[order], r[order]
    mapped = r < nrows
    qlen = _i64(reads.lengths[rec_read])

    flag = np.where(mapped, np.where(strand[r], FLAG_REVERSE, 0) | np.where(primary[r], 0, FLAG_SECONDARY),
                    FLAG_UNMAPPED).astype(np.int64)
    ref = np.where(mapped, contig[r], -1)
    pos = np.where(mapped, tstart[r] + 1, 0)
    mapq = np.where(primary[r], col("mapq")[r], 0)
    rnext = np.full(rec_read.shape[0], RNEXT_NONE, dtype=np.int64)
    pnext = np.zeros(rec_read.shape[0], dtype=np.int64)
    tlen = np.zeros(rec_read.shape[0], dtype=np.int64)
    if reads.mates == 2:
        own, o = first[rec_read], first[rec_read ^ 1]  # each read's first row and its mate's
        has_mate = o < nrows
        flag |= FLAG_PAIRED | np.where(rec_read & 1, FLAG_LAST, FLAG_FIRST)
        flag |= np.where(has_mate, np.where(strand[o], FLAG_MATE_REVERSE, 0), FLAG_MATE_UNMAPPED)
        flag |= np.where(mapped & has_mate & primary[r] & proper_reads(rows, n)[rec_read], FLAG_PROPER, 0)
        rnext = np.where(has_mate, contig[o], RNEXT_NONE)
        pnext = np.where(has_mate, tstart[o] + 1, 0)
        same = mapped & has_mate & (contig[o] == contig[r])
        rnext = np.where(same, RNEXT_SAME, rnext)
        # TLEN: the span of this read's first row and its mate's, on primary lines.
        span = np.maximum(tend[own], tend[o]) - np.minimum(tstart[own], tstart[o])
        leftmost = (tstart[own] < tstart[o]) | ((tstart[own] == tstart[o]) & (strand[own] <= strand[o]))
        tlen = np.where(same & primary[r] & (contig[own] == contig[o]), np.where(leftmost, span, -span), 0)
        alone = mapped & ~has_mate & primary[r]  # the unmapped mate is placed here
        rnext = np.where(alone, RNEXT_SAME, rnext)
        pnext = np.where(alone, pos, pnext)
        placed = ~mapped & has_mate  # an unmapped read sits at its mate's place
        ref = np.where(placed, contig[o], ref)
        pos = np.where(placed, tstart[o] + 1, pos)
        rnext = np.where(placed, RNEXT_SAME, rnext)
    return dict(rec_read=rec_read, flag=flag, ref=_i64(ref), pos=_i64(pos), mapq=_i64(mapq),
                clip_left=np.where(mapped, col("q_start")[r], 0),
                clip_right=np.where(mapped, qlen - col("q_end")[r], 0),
                cigars=cigar_rows(rows["cigar"]) if nrows else np.zeros((0, 1), dtype=np.uint32),
                rec_cigar=np.where(mapped, r, -1), rnext=_i64(rnext), pnext=_i64(pnext), tlen=_i64(tlen),
                nm=col("nm")[r], score=col("score")[r], bases=int(qlen.sum()))


def _read_arrays(reads: ShardReads) -> tuple:
    quals = reads.quals if reads.quals is not None else np.zeros(0, dtype=np.uint8)
    return reads.codes, _i64(reads.offsets), _i64(reads.lengths), quals, reads.quals is not None


def sam_bytes(rows: dict[str, np.ndarray], reads: ShardReads, tnames: np.ndarray, rg: str | None) -> tuple[bytes, int]:
    """The SAM lines of a shard, read by read (each read's rows, primary first; one unmapped
    line for a read without), and how many lines."""
    f = _record_fields(rows, reads)
    rg_bytes = np.frombuffer(f"\tRG:Z:{rg}".encode() if rg else b"", dtype=np.uint8)
    n = f["rec_read"].shape[0]
    buf = np.empty(sam_bound(n, f["bases"], reads.names.shape[1], tnames.shape[1], f["cigars"].shape[1],
                             rg_bytes.shape[0]), dtype=np.uint8)
    codes, offsets, lengths, quals, has_qual = _read_arrays(reads)
    size = sam_text(buf, reads.names, rg_bytes, tnames, f["rec_read"], f["flag"], f["ref"], f["pos"], f["mapq"],
                    f["clip_left"], f["clip_right"], f["cigars"], f["rec_cigar"], f["rnext"], f["pnext"], f["tlen"],
                    codes, offsets, lengths, quals, has_qual, f["nm"], f["score"])
    return buf[:size].tobytes(), n


def bam_bytes(rows: dict[str, np.ndarray], reads: ShardReads,
              rg: str | None, first_read: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The BAM records of a shard, in :func:`sam_bytes`' order: their bytes, where each
    begins (and the end), and each one's coordinate sort key. ``first_read``: the shard's
    number for the first of ``reads`` (a slice of a shard), as errors name a read."""
    f = _record_fields(rows, reads)
    rg_bytes = np.frombuffer(rg.encode() + b"\0" if rg else b"", dtype=np.uint8)
    n = f["rec_read"].shape[0]
    buf = np.empty(bam_bound(n, f["bases"], reads.names.shape[1], f["cigars"].shape[1], rg_bytes.shape[0]),
                   dtype=np.uint8)
    starts, ends = np.empty(n + 1, dtype=np.int64), np.empty(n, dtype=np.int64)
    codes, offsets, lengths, quals, has_qual = _read_arrays(reads)
    done = bam_records(buf, starts, ends, reads.names, rg_bytes, f["rec_read"], f["flag"], f["ref"], f["pos"],
                       f["mapq"], f["clip_left"], f["clip_right"], f["cigars"], f["rec_cigar"], f["rnext"],
                       f["pnext"], f["tlen"], codes, offsets, lengths, quals, has_qual, f["nm"], f["score"])
    if done < n:
        bad = f["cigars"][f["rec_cigar"][done]]
        text = bad.tobytes().decode("utf-32-le").rstrip("\0")
        raise ValueError(f"alignment of read {first_read + int(f['rec_read'][done])}: CIGAR {text!r} is not a CIGAR "
                         "(expected runs of a length and one of MIDNSHP=X)")
    return buf[:starts[n]], starts, coordinate_keys(f["ref"], f["pos"], f["flag"])
