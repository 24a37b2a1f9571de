"""Inter-sequence vectorized Smith-Waterman (SWIPE-style): many pairs in int16 SIMD lanes.

Pairs are sorted by length and cut into batches of ``LANES``; each batch is transposed
so the pair index is innermost, and the DP runs once for the whole batch with every
value kept in int16, which lets LLVM emit packed adds and maxes. Batches run in
parallel with ``prange``. Results equal :func:`hpc.kernels.scalar.sw_score` exactly (score,
and the first end cell in row-major order); pairs whose score could overflow int16 go
through that int32 kernel instead. Pure Numba, no I/O.
"""

from __future__ import annotations

import numba
import numpy as np

from hpc.kernels.jit import NJIT
from hpc.kernels.scalar import sw_score_band

LANES = 128  # two AVX2 registers of int16; AVX-512 machines fill one
INT16_SAFE = 32_000  # a pair whose best possible score reaches this takes the int32 path
NEG16 = -16_384  # "minus infinity" that cannot wrap when a penalty is added once
MAX_PENALTY = 8_000  # scores beyond this magnitude take the int32 path


@numba.njit(inline="always", **NJIT)
def _cells(qt, rt, h_prev, h_cur, f, h_left, e, q0, r0, c0, lanes, sm, sx, go, ge, dj, lo, hi):
    """Cell (i, j) in every lane; c0 = (j - 1) * lanes, ``dj`` its diagonal j - i. A lane whose
    band [lo, hi] leaves that diagonal out gets H 0 there; its E and F there stay below any
    that an H >= 0 inside the band makes, so they never change a cell in the band. Each
    array written here is read only at the index it is written, so LLVM can vectorize with
    plain pointer checks. Indices are unsigned so Numba emits no negative-index wraparound,
    which would block vectorizing."""
    zero = np.int16(0)
    q0 = np.uint64(q0)
    r0 = np.uint64(r0)
    c0 = np.uint64(c0)
    c1 = c0 + np.uint64(lanes)
    for l in range(np.uint64(lanes)):
        s = sm if qt[q0 + l] == rt[r0 + l] else sx
        d = np.int16(h_prev[c0 + l] + s)
        el = np.int16(h_left[l] + go)
        ee = np.int16(e[l] + ge)
        ev = el if el > ee else ee
        fo = np.int16(h_prev[c1 + l] + go)
        fe = np.int16(f[c1 + l] + ge)
        fv = fo if fo > fe else fe
        h = d if d > zero else zero
        h = h if h > ev else ev
        h = h if h > fv else fv
        h = h if (dj >= lo[l]) & (dj <= hi[l]) else zero
        h_cur[c1 + l] = h
        f[c1 + l] = fv
        e[l] = ev
        h_left[l] = h


@numba.njit(inline="always", **NJIT)
def _track_best(h_row, h0, j, row_best, row_col, lanes):
    """Per lane: the row's best H so far and the first column reaching it (branch-free)."""
    h0 = np.uint64(h0)
    for l in range(np.uint64(lanes)):
        h = h_row[h0 + l]
        rb = row_best[l]
        rc = row_col[l]
        better = np.int16(h > rb)
        row_col[l] = np.int16(rc + better * np.int16(j - rc))
        row_best[l] = h if h > rb else rb


@numba.njit(**NJIT)
def _batch(qs, q_off, q_len, rs, r_off, r_len, band_lo, band_hi, pairs, match, mismatch, gap_open, gap_extend,
           out_score, out_qend, out_rend, lanes):
    """DP for up to ``lanes`` pairs at once; lane l is pair ``pairs[l]``, in its diagonals
    [band_lo, band_hi]. Each row runs over the columns of the lanes' bands together.

    ``lanes`` is a run-time value on purpose: with a constant trip count LLVM unrolls the
    lane loops fully and then cannot vectorize them (it cannot prove the arrays distinct).
    """
    nl = pairs.shape[0]
    m = 0
    n = 0
    lo = np.ones(lanes, dtype=np.int16)  # a padding lane's band is empty
    hi = np.zeros(lanes, dtype=np.int16)
    for l in range(nl):
        m = max(m, q_len[pairs[l]])
        n = max(n, r_len[pairs[l]])
        lo[l] = band_lo[pairs[l]]
        hi[l] = band_hi[pairs[l]]
    u_lo = np.int64(lo[:nl].min())
    u_hi = np.int64(hi[:nl].max())
    # Transposed copies padded with codes that never match (query 4, reference 5), so
    # padding can never raise a score; an N in either sequence is a mismatch the same way.
    qt = np.full(m * lanes, 4, dtype=np.uint8)
    rt = np.full(n * lanes, 5, dtype=np.uint8)
    for l in range(nl):
        p = pairs[l]
        for i in range(q_len[p]):
            qt[i * lanes + l] = qs[q_off[p] + i]
        for j in range(r_len[p]):
            c = rs[r_off[p] + j]
            rt[j * lanes + l] = 5 if c == 4 else c
    # Flat rows (index j * lanes + l) and per-lane H(i, j-1), E(i, j-1): no array views in
    # the hot loop (a view costs reference counting).
    h_prev = np.zeros((n + 1) * lanes, dtype=np.int16)
    h_cur = np.zeros((n + 1) * lanes, dtype=np.int16)
    f = np.full((n + 1) * lanes, NEG16, dtype=np.int16)
    h_left = np.zeros(lanes, dtype=np.int16)
    e = np.zeros(lanes, dtype=np.int16)
    row_best = np.zeros(lanes, dtype=np.int16)
    row_col = np.zeros(lanes, dtype=np.int16)
    best = np.zeros(lanes, dtype=np.int16)
    best_i = np.zeros(lanes, dtype=np.int32)
    best_j = np.zeros(lanes, dtype=np.int32)
    sm = np.int16(match)
    sx = np.int16(mismatch)
    go = np.int16(gap_open)
    ge = np.int16(gap_extend)
    for i in range(m):
        # Row i + 1 of the matrix. Right of the band nothing was written yet (the band only
        # moves right), so the row above holds H 0 and F "minus infinity" there.
        j_lo = max(1, i + 1 + u_lo)
        j_hi = min(n, i + 1 + u_hi)
        if j_lo > n:
            break
        for l in range(lanes):
            h_left[l] = 0
            e[l] = NEG16
            row_best[l] = 0
            row_col[l] = 0
        for j in range(j_lo, j_hi + 1):
            _cells(qt, rt, h_prev, h_cur, f, h_left, e, i * lanes, (j - 1) * lanes, (j - 1) * lanes,
                   lanes, sm, sx, go, ge, np.int16(j - i - 1), lo, hi)
        for j in range(j_lo, j_hi + 1):
            _track_best(h_cur, j * lanes, np.int16(j), row_best, row_col, lanes)
        for l in range(lanes):
            if row_best[l] > best[l]:
                best[l] = row_best[l]
                best_i[l] = i + 1
                best_j[l] = row_col[l]
        h_prev, h_cur = h_cur, h_prev
    for l in range(nl):
        out_score[pairs[l]] = best[l]
        out_qend[pairs[l]] = best_i[l]
        out_rend[pairs[l]] = best_j[l]


@numba.njit(parallel=True, **NJIT)
def _run_batches(qs, q_off, q_len, rs, r_off, r_len, band_lo, band_hi, order, bounds, match, mismatch, gap_open,
                 gap_extend, out_score, out_qend, out_rend, lanes):
    for b in numba.prange(bounds.shape[0] - 1):
        _batch(qs, q_off, q_len, rs, r_off, r_len, band_lo, band_hi, order[bounds[b] : bounds[b + 1]],
               match, mismatch, gap_open, gap_extend, out_score, out_qend, out_rend, lanes)


@numba.njit(parallel=True, **NJIT)
def _run_wide(qs, q_off, q_len, rs, r_off, r_len, band_lo, band_hi, wide, match, mismatch, gap_open, gap_extend,
              out_score, out_qend, out_rend):
    for k in numba.prange(wide.shape[0]):
        p = wide[k]
        s, qe, re = sw_score_band(qs[q_off[p] : q_off[p] + q_len[p]], rs[r_off[p] : r_off[p] + r_len[p]],
                                  match, mismatch, gap_open, gap_extend, band_lo[p], band_hi[p])
        out_score[p] = s
        out_qend[p] = qe
        out_rend[p] = re


def needs_wide(q_len: np.ndarray, r_len: np.ndarray, match: int, mismatch: int, gap_open: int,
               gap_extend: int) -> np.ndarray:
    """Pairs the int16 lanes cannot hold: best possible score or coordinates past int16.

    A positive mismatch score also takes the int32 path: lane padding scores as a mismatch,
    which is only harmless when a mismatch cannot raise a score.
    """
    if mismatch > 0 or max(abs(match), abs(mismatch), abs(gap_open), abs(gap_extend)) > MAX_PENALTY:
        return np.ones(q_len.shape[0], dtype=bool)
    ceiling = match * np.minimum(q_len, r_len).astype(np.int64)
    return (ceiling >= INT16_SAFE) | (r_len >= INT16_SAFE)


def sw_score_batch_simd(qs, q_off, q_len, rs, r_off, r_len, band_lo, band_hi, match, mismatch, gap_open, gap_extend):
    """Same contract as :func:`hpc.kernels.scalar.sw_score_batch`: (scores, q_end, r_end) int32."""
    q_len = np.asarray(q_len, dtype=np.int64)
    r_len = np.asarray(r_len, dtype=np.int64)
    q_off = np.asarray(q_off, dtype=np.int64)
    r_off = np.asarray(r_off, dtype=np.int64)
    band_lo = np.asarray(band_lo, dtype=np.int64)
    band_hi = np.asarray(band_hi, dtype=np.int64)
    npairs = q_len.shape[0]
    out = [np.zeros(npairs, dtype=np.int32) for _ in range(3)]
    if npairs == 0:
        return tuple(out)
    wide = needs_wide(q_len, r_len, match, mismatch, gap_open, gap_extend)
    narrow = np.nonzero(~wide)[0]
    # Similar shapes share a batch, so little of each batch is padding.
    order = narrow[np.lexsort((r_len[narrow], q_len[narrow]))].astype(np.int64)
    bounds = np.append(np.arange(0, order.shape[0], LANES), order.shape[0]).astype(np.int64)
    args = (match, mismatch, gap_open, gap_extend, *out)
    if order.shape[0]:
        # LANES is passed from Python so Numba types it as a run-time int, not a literal.
        _run_batches(qs, q_off, q_len, rs, r_off, r_len, band_lo, band_hi, order, bounds, *args, LANES)
    if wide.any():
        _run_wide(qs, q_off, q_len, rs, r_off, r_len, band_lo, band_hi, np.nonzero(wide)[0].astype(np.int64), *args)
    return tuple(out)
