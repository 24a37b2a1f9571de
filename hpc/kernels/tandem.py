"""A read's rival inside its own window: the window of a read in a tandem array holds the
whole array (its seeds' diagonals run together into one cluster), so the read has one
candidate, one alignment and no runner-up, and its MAPQ would say unique where any shift by
whole units aligns as well. bwa-mem caps MAPQ by the second-best score in the same window
(ksw's ``csub``); this scores the read ungapped on the window's other diagonals. Of such equal
placements, a mate takes the one its insert makes likeliest. No I/O."""

from __future__ import annotations

import numba
import numpy as np

from hpc.kernels.jit import NJIT
from hpc.kernels.scalar import ungapped_best


@numba.njit(**NJIT)
def shifted_scores(qs, q_off, q_len, rs, r_off, r_len, band_lo, band_hi, picks, q_ends, r_ends, match, mismatch,
                   tolerance):
    """Per pick: the best ungapped local score of its read in its window (``score_batch``'s
    layout) on a diagonal of its band more than ``tolerance`` from where its alignment ends
    (another locus, as :func:`hpc.kernels.batch.locus_spans` tells loci apart); 0 where the
    band holds no such diagonal, as for a read's usual window (seeds on one diagonal)."""
    out = np.zeros(picks.shape[0], dtype=np.int64)
    for i in range(picks.shape[0]):
        c = picks[i]
        m, n = q_len[c], r_len[c]
        d_best = r_ends[c] - q_ends[c]
        lo, hi = max(band_lo[c], 1 - m), min(band_hi[c], n - 1)
        if hi - lo <= 2 * tolerance:
            continue
        q = qs[q_off[c]:q_off[c] + m]
        r = rs[r_off[c]:r_off[c] + n]
        best = 0
        for d in range(lo, hi + 1):
            if abs(d - d_best) > tolerance:
                best = max(best, ungapped_best(q, r, match, mismatch, d)[0])
        out[i] = best
    return out


@numba.njit(**NJIT)
def place_by_insert(qs, q_off, q_len, rs, r_off, r_len, band_lo, band_hi, scores, q_ends, r_ends, wstart, moves,
                    mate_start, mate_end, match, mismatch, mean):
    """Each candidate ``moves[i]`` (a mate whose window holds placements as good as its own, as
    inside a tandem array) moved, in place (``q_ends``/``r_ends``, inclusive), to the diagonal of
    its band on which it aligns ungapped with its score and whose insert with its mate (at
    ``mate_start[i]`` .. ``mate_end[i]``, the window's contig coordinates, as ``wstart``) is
    closest to ``mean``; the placement DP reported stays on a tie. Returns how many moved."""
    moved = 0
    for i in range(moves.shape[0]):
        c = moves[i]
        m, n = q_len[c], r_len[c]
        q = qs[q_off[c]:q_off[c] + m]
        r = rs[r_off[c]:r_off[c] + n]
        d0 = r_ends[c] - q_ends[c]
        best_d, best_q, best_gap = d0, q_ends[c], -1.0
        for d in range(max(band_lo[c], 1 - m), min(band_hi[c], n - 1) + 1):
            s, qst, qen = ungapped_best(q, r, match, mismatch, d)
            if s != scores[c]:
                continue
            insert = max(wstart[c] + qen + d, mate_end[i]) - min(wstart[c] + qst + d, mate_start[i])
            gap = abs(insert - mean)
            if best_gap < 0 or gap < best_gap or (gap == best_gap and d == d0):
                best_d, best_q, best_gap = d, qen - 1, gap
        if best_d != d0:
            q_ends[c] = best_q
            r_ends[c] = best_q + best_d
            moved += 1
    return moved
