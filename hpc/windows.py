"""A shard's candidates, their bases gathered a block at a time.

A rank scores, checks and traces every candidate of a shard, but holds the bases (the read,
reverse-complemented where it aligns backwards, and its reference window) of at most
:data:`BLOCK` candidates at once. Gathered whole, a 100k-read shard's bases were about 40 MB,
the largest thing in a rank, and they grew with the shard's candidate count: a rank's peak
was then the highest of its shards' counts, so a run of more shards peaked higher. Pure
array code around the kernels; no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpc.genome import Genome
from hpc.kernels.batch import gather_pairs, trace_pairs
from hpc.kernels.tandem import place_by_insert, shifted_scores

BLOCK = 1 << 15  # candidates whose bases are gathered at once: about 11 MB for 150-bp reads


@dataclass(frozen=True)
class Windows:
    """Candidate ``c`` is read ``read[c]`` on ``strand[c]`` against genome positions
    ``start[c]`` .. ``end[c]`` (global: the contig's start added)."""

    codes: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    genome: Genome
    read: np.ndarray
    strand: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @classmethod
    def of(cls, codes, reads, genome: Genome, read, strand, contig, wstart, wend) -> Windows:
        """``reads``: the shard's base members; ``wstart``/``wend``: contig coordinates."""
        base = genome.starts[contig].astype(np.int64)
        return cls(codes, np.asarray(reads["offsets"], dtype=np.int64), np.asarray(reads["lengths"], dtype=np.int64),
                   genome, read, strand, base + wstart, base + wend)

    @property
    def q_len(self) -> np.ndarray:
        return self.lengths[self.read]

    @property
    def r_len(self) -> np.ndarray:
        return (self.end - self.start).astype(np.int64)

    def gather(self, idx: np.ndarray):
        """The candidates ``idx``' bases, ``(qs, q_off, q_len, rs, r_off, r_len)`` in the order of ``idx``."""
        return gather_pairs(self.codes, self.offsets, self.lengths, self.read[idx], self.strand[idx], self.genome,
                            self.start[idx], self.end[idx])

    def each_block(self, step, idx: np.ndarray | None = None) -> list:
        """``step(part, batch)`` per block of ``idx`` (every candidate by default): ``part``, the
        block's candidates, and ``batch``, their gathered bases, which go when ``step`` returns
        (before the next block's are gathered)."""
        idx = np.arange(self.read.shape[0]) if idx is None else np.asarray(idx, dtype=np.int64)
        return [step(idx[lo:lo + BLOCK], self.gather(idx[lo:lo + BLOCK])) for lo in range(0, idx.shape[0], BLOCK)]

    def score(self, score_pairs, scoring, band) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every candidate's ``(scores, q_ends, r_ends)`` from ``score_pairs`` in ``band``."""
        out = self.each_block(lambda part, batch: score_pairs(*batch, *scoring, band=(band[0][part], band[1][part])))
        if not out:
            empty = np.zeros(0, dtype=np.int32)
            return empty, empty, empty
        return tuple(np.concatenate(col) for col in zip(*out))

    def shifted(self, band, pick, q_ends, r_ends, match, mismatch, tolerance) -> np.ndarray:
        """:func:`hpc.kernels.tandem.shifted_scores` of the picks."""
        out = self.each_block(lambda part, batch: shifted_scores(*batch, band[0][part], band[1][part],
                                                                 np.arange(part.shape[0]), q_ends[part], r_ends[part],
                                                                 match, mismatch, tolerance), pick)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def place(self, band, scores, q_ends, r_ends, wstart, moves, mate_start, mate_end, match, mismatch,
              mean) -> None:
        """:func:`hpc.kernels.tandem.place_by_insert` of candidates ``moves``, into ``q_ends`` and ``r_ends``."""
        for lo in range(0, moves.shape[0], BLOCK):
            part = moves[lo:lo + BLOCK]
            q, r = q_ends[part].copy(), r_ends[part].copy()
            place_by_insert(*self.gather(part), band[0][part], band[1][part], scores[part], q, r,
                            wstart[part].astype(np.int64), np.arange(part.shape[0]), mate_start[lo:lo + BLOCK],
                            mate_end[lo:lo + BLOCK], match, mismatch, mean)
            q_ends[part], r_ends[part] = q, r

    def trace(self, band, pick, scores, q_ends, r_ends, scoring, trace_band):
        """:func:`hpc.kernels.batch.trace_pairs` of the picks: ``(coords, ops, lens, off)``."""
        out = self.each_block(lambda part, batch: trace_pairs(*batch, band[0][part], band[1][part],
                                                              np.arange(part.shape[0]), scores[part], q_ends[part],
                                                              r_ends[part], *scoring, trace_band), pick)
        if not out:
            return np.zeros((0, 8), dtype=np.int64), np.zeros(0, np.uint8), np.zeros(0, np.int32), np.zeros(1, np.int64)
        ends = np.cumsum([0] + [off[-1] for *_, off in out])
        offs = [np.zeros(1, dtype=np.int64)] + [off[1:] + at for (*_, off), at in zip(out, ends)]
        coords, ops, lens, _ = zip(*out)
        return np.concatenate(coords), np.concatenate(ops), np.concatenate(lens), np.concatenate(offs)
