"""Smith-Waterman local alignment with affine gaps: pure Numba kernels, no I/O.

Sequences are uint8 base codes: A=0, C=1, G=2, T=3, N=4. An N scores as a mismatch
against every base, N included. Scores follow parasail's convention with signed values:
a gap of length k scores ``gap_open + (k - 1) * gap_extend`` (so parasail's
``open=-gap_open, extend=-gap_extend``). Query is the read, reference is the window.
All arithmetic is int32, so no read/window length used here can overflow.
"""

from __future__ import annotations

import numba
import numpy as np

from hpc.kernels.jit import NJIT

NEG_INF = -(2**30)
BASE_N = 4

# Traceback bits per cell.
_H_FROM_MASK = 3  # 0 = start (score 0), 1 = diagonal, 2 = from E, 3 = from F
_E_EXTEND = 4  # E at this cell came from E of the left cell (gap extended)
_F_EXTEND = 8  # F at this cell came from F of the upper cell


@numba.njit(**NJIT)
def sw_score_band(q, r, match, mismatch, gap_open, gap_extend, band_lo, band_hi):
    """Best local score over the cells whose diagonal j - i lies in [band_lo, band_hi] (cells
    outside count as 0: no alignment passes through them) and its (exclusive) query and
    reference end, the first in row-major order; (0, 0, 0) when none. The band
    [-len(q), len(r)] is the whole matrix."""
    m = q.shape[0]
    n = r.shape[0]
    h_prev = np.zeros(n + 1, dtype=np.int32)
    h_cur = np.zeros(n + 1, dtype=np.int32)
    f_col = np.full(n + 1, NEG_INF, dtype=np.int32)
    best = 0
    best_i = 0
    best_j = 0
    for i in range(1, m + 1):
        qi = q[i - 1]
        e = NEG_INF
        j_lo = max(1, i + band_lo)
        j_hi = min(n, i + band_hi)
        if j_lo > n:
            break  # the band has left the matrix; so will every later row
        # Left of the band H is 0. Right of it nothing was written yet: the band only moves
        # right, so the row above holds its initial H 0 and F "minus infinity" there.
        h_cur[j_lo - 1] = 0
        for j in range(j_lo, j_hi + 1):
            rj = r[j - 1]
            s = match if (qi == rj and qi != BASE_N) else mismatch
            diag = h_prev[j - 1] + s
            e = max(h_cur[j - 1] + gap_open, e + gap_extend)
            f = max(h_prev[j] + gap_open, f_col[j] + gap_extend)
            f_col[j] = f
            h = max(0, diag, e, f)
            h_cur[j] = h
            if h > best:
                best = h
                best_i = i
                best_j = j
        h_prev, h_cur = h_cur, h_prev
    return best, best_i, best_j


@numba.njit(**NJIT)
def sw_score(q, r, match, mismatch, gap_open, gap_extend):
    """Best local score and its (exclusive) query and reference end; (0, 0, 0) when none."""
    return sw_score_band(q, r, match, mismatch, gap_open, gap_extend, -q.shape[0], r.shape[0])


@numba.njit(parallel=True, **NJIT)
def sw_score_batch(qs, q_off, q_len, rs, r_off, r_len, band_lo, band_hi, match, mismatch, gap_open, gap_extend):
    """Score many (query, reference) pairs; pair p uses qs[q_off[p]:+q_len[p]] and likewise r,
    in the diagonals [band_lo[p], band_hi[p]]."""
    npairs = q_off.shape[0]
    scores = np.zeros(npairs, dtype=np.int32)
    q_end = np.zeros(npairs, dtype=np.int32)
    r_end = np.zeros(npairs, dtype=np.int32)
    for p in numba.prange(npairs):
        q = qs[q_off[p] : q_off[p] + q_len[p]]
        r = rs[r_off[p] : r_off[p] + r_len[p]]
        s, qe, re = sw_score_band(q, r, match, mismatch, gap_open, gap_extend, band_lo[p], band_hi[p])
        scores[p] = s
        q_end[p] = qe
        r_end[p] = re
    return scores, q_end, r_end


@numba.njit(**NJIT)
def sw_traceback(q, r, match, mismatch, gap_open, gap_extend):
    """Full alignment: (score, q_start, q_end, r_start, r_end, ops, lens).

    ``ops`` holds CIGAR operations as codes (0 = M, 1 = I, 2 = D) in reference order and
    ``lens`` their lengths. Coordinates are 0-based, ends exclusive. Memory is one byte per
    cell, so this is meant for the reported pairs only.
    """
    return sw_traceback_band(q, r, match, mismatch, gap_open, gap_extend, -q.shape[0], r.shape[0])


@numba.njit(**NJIT)
def sw_traceback_band(q, r, match, mismatch, gap_open, gap_extend, band_lo, band_hi):
    """:func:`sw_traceback` restricted to cells whose diagonal j - i lies in [band_lo, band_hi].

    The best banded score can only be lower than the full one; a caller that knows the full
    score (from a score pass) accepts the banded result when the two are equal.
    """
    m = q.shape[0]
    n = r.shape[0]
    # Trace bits are stored for the band only: row i keeps columns j - shift * (i + band_lo),
    # so a narrow band costs (m + 1) * width bytes, not (m + 1) * (n + 1).
    width = band_hi - band_lo + 1
    shift = 1
    if width >= n + 1:
        width = n + 1
        shift = 0
    trace = np.empty((m + 1, width), dtype=np.uint8)
    h_prev = np.zeros(n + 1, dtype=np.int32)
    h_cur = np.zeros(n + 1, dtype=np.int32)
    f_col = np.full(n + 1, NEG_INF, dtype=np.int32)
    best = 0
    best_i = 0
    best_j = 0
    for i in range(1, m + 1):
        qi = q[i - 1]
        e = NEG_INF
        j_lo = max(1, i + band_lo)
        j_hi = min(n, i + band_hi)
        if j_lo > n:
            # The band has left the matrix on the right (a read that overhangs a window clipped
            # at a contig end); every later row is empty too, and h_cur[j_lo - 1] would be
            # written past the end of the row.
            break
        col = shift * (i + band_lo)
        h_cur[0] = 0
        h_cur[j_lo - 1] = 0  # left of the band: no alignment comes from there
        for j in range(j_lo, j_hi + 1):
            rj = r[j - 1]
            s = match if (qi == rj and qi != BASE_N) else mismatch
            bits = 0
            e_open = h_cur[j - 1] + gap_open
            e_ext = e + gap_extend
            if e_ext > e_open:
                e = e_ext
                bits |= _E_EXTEND
            else:
                e = e_open
            f_open = h_prev[j] + gap_open
            f_ext = f_col[j] + gap_extend
            if f_ext > f_open:
                f = f_ext
                bits |= _F_EXTEND
            else:
                f = f_open
            f_col[j] = f
            h = 0
            diag = h_prev[j - 1] + s
            if diag > h:
                h = diag
                bits = (bits & ~_H_FROM_MASK) | 1
            if e > h:
                h = e
                bits = (bits & ~_H_FROM_MASK) | 2
            if f > h:
                h = f
                bits = (bits & ~_H_FROM_MASK) | 3
            h_cur[j] = h
            trace[i, j - col] = bits
            if h > best:
                best = h
                best_i = i
                best_j = j
        h_prev, h_cur = h_cur, h_prev

    ops = np.empty(m + n + 1, dtype=np.uint8)
    nops = 0
    i = best_i
    j = best_j
    state = 0  # 0 = in H, 1 = in E (deletion), 2 = in F (insertion)
    while i > 0 and j > 0:
        bits = trace[i, j - shift * (i + band_lo)]
        if state == 0:
            src = bits & _H_FROM_MASK
            if src == 0:
                break
            if src == 1:
                ops[nops] = 0
                nops += 1
                i -= 1
                j -= 1
            elif src == 2:
                state = 1
            else:
                state = 2
        elif state == 1:
            ops[nops] = 2
            nops += 1
            if not (bits & _E_EXTEND):
                state = 0
            j -= 1
        else:
            ops[nops] = 1
            nops += 1
            if not (bits & _F_EXTEND):
                state = 0
            i -= 1
    # Run-length encode in forward order.
    run_ops = np.empty(nops, dtype=np.uint8)
    run_lens = np.empty(nops, dtype=np.int32)
    nruns = 0
    for k in range(nops - 1, -1, -1):
        if nruns > 0 and run_ops[nruns - 1] == ops[k]:
            run_lens[nruns - 1] += 1
        else:
            run_ops[nruns] = ops[k]
            run_lens[nruns] = 1
            nruns += 1
    return best, i, best_i, j, best_j, run_ops[:nruns], run_lens[:nruns]


@numba.njit(**NJIT)
def ungapped_best(q, r, match, mismatch, diag):
    """The best local alignment without gaps on one diagonal (reference position = query
    position + ``diag``): ``(score, q_start, q_end)``, ends exclusive; Smith-Waterman's own
    rules (a segment starts where the running score would fall to 0 or below, the first
    best end wins). When it equals a read's gapped Smith-Waterman score, this segment is an
    optimal alignment and no traceback matrix is needed."""
    m = q.shape[0]
    i_lo = max(0, -diag)
    i_hi = min(m, r.shape[0] - diag)
    run = 0
    start = i_lo
    best = 0
    best_start = 0
    best_end = 0
    for i in range(i_lo, i_hi):
        qi = q[i]
        s = match if (qi == r[i + diag] and qi != BASE_N) else mismatch
        if run + s > 0:
            run += s
        else:
            run = 0
            start = i + 1
        if run > best:
            best = run
            best_start = start
            best_end = i + 1
    return best, best_start, best_end


def cigar_string(ops: np.ndarray, lens: np.ndarray) -> str:
    """CIGAR text from the op codes that sw_traceback returns."""
    return "".join(f"{int(n)}{'MID'[int(o)]}" for o, n in zip(ops, lens))


@numba.njit(**NJIT)
def alignment_stats(q, r, q_start, r_start, ops, lens):
    """(matching bases, alignment block length, edit distance NM) of a traced alignment."""
    matches = 0
    block = 0
    nm = 0
    qi = q_start
    rj = r_start
    for k in range(ops.shape[0]):
        n = lens[k]
        block += n
        if ops[k] == 0:
            for t in range(n):
                if q[qi + t] == r[rj + t] and q[qi + t] != BASE_N:
                    matches += 1
                else:
                    nm += 1
            qi += n
            rj += n
        elif ops[k] == 1:
            nm += n
            qi += n
        else:
            nm += n
            rj += n
    return matches, block, nm
