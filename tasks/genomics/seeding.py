"""Reference (w,k)-minimizer index and candidate windows per read (both strands).

The index is built from the packed genome by a counting sort in Numba
(:mod:`hpc.kernels.index`, on several threads: :mod:`tasks.genomics.index_build`);
:func:`kmer_values` and :func:`minimizer_mask` are the plain numpy statement of the same
minimizers, which the tests hold the kernels to. A read's minimizers are looked up in the
sorted reference minimizers (:mod:`hpc.kernels.seed`, Numba); hits are clustered by diagonal (reference
position minus read position) per read and strand, and the clusters with the most hits
become candidate windows: the read's span on the reference plus a margin for indels,
clipped to the contig.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpc.codec import CODE_N, COMPLEMENT
from hpc.genome import Genome, genome_from_codes
from hpc.kernels.seed import HASH_MUL, NO_HASH, seed_shard
from hpc.split import window_cells
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




def canonical_keys(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The index's view of every k-mer (the reference for the kernels' semantics): its key
    ``c << 1 | o``, its canonical value ``c`` (the smaller of its 2-bit value and its reverse
    complement's; ``o`` is 1 when the reverse complement's is) and whether it is free of N and
    not a palindrome."""
    values, valid = kmer_values(codes, k)
    back, _ = kmer_values(COMPLEMENT[codes[::-1]], k)
    rc = back[::-1]  # the reverse complement of the k-mer at each start
    canonical = np.minimum(values, rc)
    keys = (canonical << np.uint64(1)) | (rc < values).astype(np.uint64)
    return keys, canonical, valid & (values != rc)


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


MID_OCC_FRAC = 2e-4  # minimap2's -f: the most frequent 0.02% of distinct minimizers are masked
MIN_MID_OCC, MAX_MID_OCC = 10, 1_000_000  # minimap2's clamps on that cut-off
SINGLE_OCC = 4  # a read with no two seeds on a diagonal takes single hits of minimizers of up to this many copies
RESCUE_OCC = 1000  # a read with no cluster is seeded again with minimizers of up to this many copies (minimap2 -x sr: -f 1000)
HIST_CAP = 1 << 16
# Seeding by the reference's size when k and w are not given. Below LARGE_GENOME: k=15, w=5
# (more seeds per read: on E. coli with reads of 1-4% errors it left no read unmapped where
# k=21, w=11 left 14 of 200k, and placed 14 more right). From it, minimap2's short-read preset:
# at 1 Gbp its index took 50 s and 2.63 GiB against 67 s and 3.87 GiB, mapping 14.7 s against
# 23.4, with the same accuracy (README, `make bench-scale`).
LARGE_GENOME = 1_000_000_000
SMALL_GENOME_SEEDING, LARGE_GENOME_SEEDING = (15, 5), (21, 11)


def default_seeding(total_bases: int, k: int | None = None, w: int | None = None) -> tuple[int, int]:
    """``(k, w)``: those given, the others by the reference's size (:data:`LARGE_GENOME`)."""
    dk, dw = LARGE_GENOME_SEEDING if total_bases >= LARGE_GENOME else SMALL_GENOME_SEEDING
    return (dk if k is None else k), (dw if w is None else w)


@dataclass
class ReferenceIndex:
    """The (w,k)-minimizer index of a packed genome, canonical minimizers. Bucket ``b`` (the
    key's top bits; key: canonical k-mer ``<< 1 |`` orientation) holds entries ``table[b] ..
    table[b+1]``, sorted by ``rest`` (the key's low ``shift`` bits); ``positions`` are global
    starts in the genome. Arrays may be memory-mapped."""

    genome: Genome
    k: int
    w: int
    shift: int
    table: np.ndarray
    rest: np.ndarray
    positions: np.ndarray
    occ_limit: int  # minimizers occurring more often are masked (minimap2's -f cut-off)

    @property
    def names(self) -> list[str]:
        return self.genome.names

    @property
    def lengths(self) -> np.ndarray:
        return self.genome.lengths

    @property
    def starts(self) -> np.ndarray:
        return self.genome.starts

    @property
    def size(self) -> int:
        return int(self.rest.shape[0])

    def window_codes(self, contig: int, start: int, end: int) -> np.ndarray:
        base = int(self.starts[contig])
        return self.genome.codes(base + start, base + end)

    @classmethod
    def build(cls, names: list[str], contig_codes: list[np.ndarray], k: int, w: int = 1) -> "ReferenceIndex":
        """The index of in-memory sequences (tests, benchmarks, small references)."""
        from tasks.genomics.index_build import build_index  # it builds this class

        return build_index(genome_from_codes(names, contig_codes), k, w)


def occurrence_limit(hist: np.ndarray) -> int:
    """minimap2's cut-off: the occurrence count below which all but the most frequent
    :data:`MID_OCC_FRAC` of distinct minimizers fall, clamped to its bounds."""
    allowed = MID_OCC_FRAC * int(hist.sum())
    at_least = np.cumsum(hist[:0:-1])  # distinct minimizers of each count or more, from the highest count down
    over = np.flatnonzero(at_least > allowed)  # a Python loop over the 65,536 counts took 0.2 s a build
    limit = hist.shape[0] - 1 - int(over[0]) if over.size else 1
    return int(min(max(limit, MIN_MID_OCC), MAX_MID_OCC))


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

    @property
    def cells(self) -> int:
        """DP cells of every window (window length x read length): the align job's unit of work."""
        return int(window_cells(self.start, self.end, self.qlen).sum())

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
    tie_extra: int | None = None,
) -> Candidates:
    """Best candidate windows per read over both strands, by seed hits per diagonal cluster
    (minimizers that occur over ``max_occ`` times, or over the index's frequency cut-off,
    are masked; a read left with no cluster is seeded again with those of up to
    :data:`RESCUE_OCC` copies, and then, still without one, with the single hits of those of up
    to :data:`SINGLE_OCC` copies): ``max_candidates``, and up to ``tie_extra`` more (default ``2 *
    max_candidates + 4``) with as many votes as the last of them, when that one has at least
    half the best's votes (copies of a repeat; not stray seeds beside one clear best)."""
    tie_extra = 2 * max_candidates + 4 if tie_extra is None else tie_extra
    limit = min(max_occ, index.occ_limit)
    out = seed_shard(shard.codes(), shard.offsets.astype(np.int64), shard.lengths.astype(np.int64), index.k,
                     index.w, index.rest, index.positions, index.table, np.uint64(index.shift),
                     index.starts, index.lengths, max_candidates, min_votes, limit,
                     margin, max_diag_gap, tie_extra, max(limit, RESCUE_OCC), SINGLE_OCC)
    return Candidates(*out)
