"""Reference (w,k)-minimizer index and candidate windows per read (both strands).

The index is built in numpy. A read's minimizers are looked up in the sorted reference
minimizers (:mod:`hpc.kernels.seed`, Numba); hits are clustered by diagonal (reference
position minus read position) per read and strand, and the clusters with the most hits
become candidate windows: the read's span on the reference plus a margin for indels,
clipped to the contig.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hpc.codec import CODE_N, COMPLEMENT
from hpc.kernels.seed import HASH_MUL, NO_HASH, bucket_table, seed_shard
from tasks.genomics.encoding import EncodedShard

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




def minimizer_mask(values: np.ndarray, valid: np.ndarray, w: int) -> np.ndarray:
    """Positions whose k-mer has the smallest hash in some window of ``w`` consecutive
    k-mers (w=1 keeps every valid k-mer). The hash scrambles the 2-bit value so that
    poly-A and other low-complexity k-mers do not always win."""
    if w <= 1 or values.shape[0] <= w:
        return valid.copy()
    h = values * HASH_MUL
    h ^= h >> np.uint64(29)
    h[~valid] = NO_HASH
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
    _table: tuple[np.ndarray, int] | None = field(default=None, repr=False, compare=False)

    def bucket_table(self) -> tuple[np.ndarray, int]:
        """Direct-address offsets into ``kmers`` by top bits (built on first use, not stored)."""
        if self._table is None:
            self._table = bucket_table(self.kmers, self.k)
        return self._table

    def __getstate__(self) -> dict:  # ship the index without its 32-MiB lookup table
        return {**self.__dict__, "_table": None}

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


def index_reference(names: list[str], seqs: list[bytes], k: int, w: int) -> ReferenceIndex:
    """The index of reference sequences given as bytes (what the Ray task runs)."""
    from tasks.genomics.encoding import to_codes

    return ReferenceIndex.build(names, [to_codes(s) for s in seqs], k, w)


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
    """Best candidate windows per read over both strands, by seed hits per diagonal cluster
    (minimizers that occur over ``max_occ`` times in the reference are masked)."""
    table, shift = index.bucket_table()
    out = seed_shard(shard.codes(), shard.offsets.astype(np.int64), shard.lengths.astype(np.int64), index.k,
                     index.w, index.kmers, index.positions, table, shift, COMPLEMENT, index.starts,
                     index.lengths, max_candidates, min_votes, max_occ, margin, max_diag_gap)
    return Candidates(*out)
