"""A read's rival inside its own window: the window of a read in a tandem array holds the
whole array (its seeds' diagonals run together into one cluster), so the read has one
candidate, one alignment and no runner-up, and its MAPQ would say unique where any shift by
whole units aligns as well. bwa-mem caps MAPQ by the second-best score in the same window
(ksw's ``csub``); this scores the read ungapped on the window's other diagonals. No I/O."""

from __future__ import annotations

import numba
import numpy as np

from hpc.kernels.jit import NJIT


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
        best = 0
        for d in range(lo, hi + 1):
            if abs(d - d_best) <= tolerance:
                continue
            run = 0
            for qi in range(max(0, -d), min(m, n - d)):
                a, b = qs[q_off[c] + qi], rs[r_off[c] + qi + d]
                run = max(0, run + (match if a == b and a < 4 else mismatch))
                best = max(best, run)
        out[i] = best
    return out
