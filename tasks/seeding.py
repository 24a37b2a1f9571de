"""Reference k-mer index and candidate windows per read (both strands), in numpy.

A read's k-mers are looked up in the sorted reference k-mers; hits are clustered by
diagonal (reference position minus read position) per read and strand, and the clusters
with the most hits become candidate windows: the read's span on the reference plus a
margin for indels, clipped to the contig.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpc.codec import CODE_N, COMPLEMENT
from tasks.encoding import EncodedShard

STRAND_FWD = 0
STRAND_REV = 1


def kmer_values(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """2-bit k-mer integers at every start position, and whether each k-mer is free of N."""
    if not 1 <= k <= 31:
        raise ValueError(f"k must be in 1..31, got {k}")
    n = codes.shape[0] - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool)
    values = np.zeros(n, dtype=np.uint64)
    for j in range(k):
        values = (values << np.uint64(2)) | (codes[j : j + n] & 3).astype(np.uint64)
    n_count = np.concatenate(([0], np.cumsum(codes == CODE_N)))
    valid = (n_count[k : k + n] - n_count[:n]) == 0
    return values, valid


_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)
_NO_HASH = np.iinfo(np.uint64).max


def minimizer_mask(values: np.ndarray, valid: np.ndarray, w: int) -> np.ndarray:
    """Positions whose k-mer has the smallest hash in some window of ``w`` consecutive
    k-mers (w=1 keeps every valid k-mer). The hash scrambles the 2-bit value so that
    poly-A and other low-complexity k-mers do not always win."""
    if w <= 1 or values.shape[0] <= w:
        return valid.copy()
    h = values * _HASH_MUL
    h ^= h >> np.uint64(29)
    h[~valid] = _NO_HASH
    windows = np.lib.stride_tricks.sliding_window_view(h, w)
    mask = np.zeros(values.shape[0], dtype=bool)
    mask[windows.argmin(axis=1) + np.arange(windows.shape[0])] = True
    return mask & valid


@dataclass
class ReferenceIndex:
    names: list[str]
    lengths: np.ndarray  # int64, per contig
    starts: np.ndarray  # int64, contig start in the concatenated codes
    codes: np.ndarray  # uint8, all contigs concatenated
    k: int
    kmers: np.ndarray  # uint64, sorted
    positions: np.ndarray  # int64, global start of each k-mer in `kmers` order
    w: int = 1  # minimizer window; 1 indexes every k-mer

    @classmethod
    def build(cls, names: list[str], contig_codes: list[np.ndarray], k: int, w: int = 1) -> "ReferenceIndex":
        lengths = np.array([c.shape[0] for c in contig_codes], dtype=np.int64)
        starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        codes = np.concatenate(contig_codes) if contig_codes else np.zeros(0, np.uint8)
        values, valid = kmer_values(codes, k)
        # A k-mer that crosses into the next contig is not a reference k-mer.
        pos = np.arange(values.shape[0], dtype=np.int64)
        contig_of = np.searchsorted(starts, pos, side="right") - 1
        valid &= pos + k <= starts[contig_of] + lengths[contig_of]
        keep = np.nonzero(minimizer_mask(values, valid, w))[0]
        order = np.argsort(values[keep], kind="stable")
        return cls(list(names), lengths, starts, codes, k, values[keep][order], keep[order], w)

    def window_codes(self, contig: int, start: int, end: int) -> np.ndarray:
        base = int(self.starts[contig])
        return self.codes[base + start : base + end]


@dataclass
class Candidates:
    """Candidate windows of one shard; coordinates are contig-local, ends exclusive."""

    read: np.ndarray  # int32, index of the read within its shard
    strand: np.ndarray  # uint8
    contig: np.ndarray  # int32
    start: np.ndarray  # int64
    end: np.ndarray  # int64
    votes: np.ndarray  # int32, seed hits supporting the window
    qlen: np.ndarray  # int32, length of the read, so DP cells are known without the reads

    def to_arrays(self) -> dict[str, np.ndarray]:
        return dict(read=self.read, strand=self.strand, contig=self.contig,
                    start=self.start, end=self.end, votes=self.votes, qlen=self.qlen)

    def __len__(self) -> int:
        return int(self.read.shape[0])


def _reverse_complement_reads(codes: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    read_of = np.repeat(np.arange(lengths.shape[0]), lengths)
    pos = np.arange(codes.shape[0], dtype=np.int64)
    src = 2 * offsets[read_of] + lengths[read_of] - 1 - pos
    return COMPLEMENT[codes[src]]


def _hits(index: ReferenceIndex, codes, offsets, lengths, max_occ):
    """(read, query position, reference position) of every seed hit on one strand."""
    values, valid = kmer_values(codes, index.k)
    read_of = np.repeat(np.arange(lengths.shape[0]), lengths)[: values.shape[0]]
    qpos = np.arange(values.shape[0], dtype=np.int64) - offsets[read_of]
    valid &= qpos + index.k <= lengths[read_of]
    valid = minimizer_mask(values, valid, index.w)
    sel = np.nonzero(valid)[0]
    # Looking up sorted keys is several times faster: searchsorted walks the index in order.
    order = np.argsort(values[sel], kind="stable")
    keys = values[sel][order]
    lo = np.empty(sel.shape[0], dtype=np.int64)
    hi = np.empty(sel.shape[0], dtype=np.int64)
    lo[order] = np.searchsorted(index.kmers, keys, side="left")
    hi[order] = np.searchsorted(index.kmers, keys, side="right")
    count = hi - lo
    ok = (count > 0) & (count <= max_occ)
    sel, lo, count = sel[ok], lo[ok], count[ok]
    total = int(count.sum())
    rep = np.repeat(np.arange(sel.shape[0]), count)
    first = np.repeat(np.cumsum(count) - count, count)
    idx = lo[rep] + (np.arange(total) - first)
    return read_of[sel][rep], qpos[sel][rep], index.positions[idx]


def find_candidates(
    index: ReferenceIndex,
    shard: EncodedShard,
    *,
    max_candidates: int = 3,
    min_votes: int = 2,
    max_occ: int = 64,
    margin: int = 16,
    max_diag_gap: int = 24,
) -> Candidates:
    """Best candidate windows per read over both strands, by seed hits per diagonal cluster."""
    codes = shard.codes()
    lengths = shard.lengths.astype(np.int64)
    offsets = shard.offsets
    parts = []
    for strand, strand_codes in (
        (STRAND_FWD, codes),
        (STRAND_REV, _reverse_complement_reads(codes, offsets, lengths)),
    ):
        read, qpos, rpos = _hits(index, strand_codes, offsets, lengths, max_occ)
        parts.append((read, np.full(read.shape[0], strand, dtype=np.int64), rpos - qpos))
    read = np.concatenate([p[0] for p in parts])
    strand = np.concatenate([p[1] for p in parts])
    diag = np.concatenate([p[2] for p in parts])
    empty = Candidates(*(np.zeros(0, dt) for dt in (np.int32, np.uint8, np.int32, np.int64, np.int64, np.int32, np.int32)))
    if read.shape[0] == 0:
        return empty

    group = read * 2 + strand
    order = np.lexsort((diag, group))
    group, diag = group[order], diag[order]
    new_cluster = np.ones(group.shape[0], dtype=bool)
    new_cluster[1:] = (group[1:] != group[:-1]) | (diag[1:] - diag[:-1] > max_diag_gap)
    starts = np.nonzero(new_cluster)[0]
    votes = np.diff(np.append(starts, group.shape[0]))
    c_group = group[starts]
    c_dmin = diag[starts]
    c_dmax = np.maximum.reduceat(diag, starts)
    c_read = c_group // 2

    keep = votes >= min_votes
    c_read, c_group, votes, c_dmin, c_dmax = c_read[keep], c_group[keep], votes[keep], c_dmin[keep], c_dmax[keep]
    rank_order = np.lexsort((-votes, c_read))
    c_read, c_group, votes, c_dmin, c_dmax = (a[rank_order] for a in (c_read, c_group, votes, c_dmin, c_dmax))
    first_of_read = np.ones(c_read.shape[0], dtype=bool)
    first_of_read[1:] = c_read[1:] != c_read[:-1]
    group_start = np.maximum.accumulate(np.where(first_of_read, np.arange(c_read.shape[0]), 0))
    top = (np.arange(c_read.shape[0]) - group_start) < max_candidates
    c_read, c_group, votes, c_dmin, c_dmax = (a[top] for a in (c_read, c_group, votes, c_dmin, c_dmax))
    if c_read.shape[0] == 0:
        return empty

    read_len = lengths[c_read]
    centre = np.clip((c_dmin + c_dmax) // 2 + read_len // 2, 0, max(index.codes.shape[0] - 1, 0))
    contig = np.searchsorted(index.starts, centre, side="right") - 1
    c_start = index.starts[contig]
    c_end = c_start + index.lengths[contig]
    w_start = np.clip(c_dmin - margin, c_start, c_end) - c_start
    w_end = np.clip(c_dmax + read_len + margin, c_start, c_end) - c_start
    return Candidates(
        read=c_read.astype(np.int32),
        strand=(c_group % 2).astype(np.uint8),
        contig=contig.astype(np.int32),
        start=w_start.astype(np.int64),
        end=w_end.astype(np.int64),
        votes=votes.astype(np.int32),
        qlen=read_len.astype(np.int32),
    )
