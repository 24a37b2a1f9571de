"""Smith-Waterman on a GPU with numba.cuda: one thread per (read, window) pair, int32.

Same inputs and outputs as :func:`hpc.kernels.scalar.sw_score_batch`, same tie rule (the first
end cell in row-major order), so results are exact against the CPU kernels. Each thread
keeps its H and F rows in global scratch, interleaved (column j of pair p at
``j * npairs + p``) so that a warp's 32 threads touch 32 adjacent words per column. Runs under the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) where there is no GPU. Pure kernel code, no I/O.
"""

from __future__ import annotations

import numpy as np
from numba import cuda  # module-level: the CUDA simulator swaps this global inside kernels

NEG_INF = -(2**30)
BASE_N = 4
THREADS_PER_BLOCK = 128


@cuda.jit
def sw_pairs(qs, q_off, q_len, rs, r_off, r_len, band_lo, band_hi, h_buf, f_buf, match, mismatch,
             gap_open, gap_extend, out_score, out_qend, out_rend):
    p = cuda.grid(1)
    npairs = q_off.shape[0]
    if p >= npairs:
        return
    n = r_len[p]
    for j in range(n + 1):
        h_buf[j * npairs + p] = 0
        f_buf[j * npairs + p] = NEG_INF
    best = 0
    best_i = 0
    best_j = 0
    for i in range(1, q_len[p] + 1):
        # Only the diagonals j - i in [band_lo, band_hi]: H is 0 outside; right of the band
        # the row above still holds its initial values (the band only moves right).
        j_lo = max(1, i + band_lo[p])
        j_hi = min(n, i + band_hi[p])
        if j_lo > n:
            break
        qi = qs[q_off[p] + i - 1]
        e = NEG_INF
        diag = h_buf[(j_lo - 1) * npairs + p] if j_lo > 1 else 0
        left = 0
        for j in range(j_lo, j_hi + 1):
            rj = rs[r_off[p] + j - 1]
            cell = j * npairs + p
            up = h_buf[cell]
            s = match if (qi == rj and qi != BASE_N) else mismatch
            e = max(left + gap_open, e + gap_extend)
            f = max(up + gap_open, f_buf[cell] + gap_extend)
            f_buf[cell] = f
            h = max(max(0, diag + s), max(e, f))
            diag = up
            h_buf[cell] = h
            left = h
            if h > best:
                best = h
                best_i = i
                best_j = j
    out_score[p] = best
    out_qend[p] = best_i
    out_rend[p] = best_j



SCRATCH_WORDS = 1 << 27  # per H and F buffer (512 MiB each); larger batches go in chunks


def sw_score_batch_cuda(qs, q_off, q_len, rs, r_off, r_len, band_lo, band_hi, match, mismatch, gap_open, gap_extend):
    """(scores, q_end, r_end) as int32 arrays, computed on the GPU (or its simulator)."""
    npairs = int(np.asarray(q_off).shape[0])
    out = [np.zeros(npairs, dtype=np.int32) for _ in range(3)]
    if npairs == 0:
        return tuple(out)
    q_off, q_len = np.asarray(q_off, np.int64), np.asarray(q_len, np.int64)
    r_off, r_len = np.asarray(r_off, np.int64), np.asarray(r_len, np.int64)
    band_lo, band_hi = np.asarray(band_lo, np.int64), np.asarray(band_hi, np.int64)
    d_qs, d_rs = cuda.to_device(np.ascontiguousarray(qs)), cuda.to_device(np.ascontiguousarray(rs))
    chunk = max(1, SCRATCH_WORDS // (int(r_len.max()) + 1))
    for lo in range(0, npairs, chunk):
        hi = min(npairs, lo + chunk)
        n = hi - lo
        scratch = (int(r_len[lo:hi].max()) + 1) * n
        h_buf = cuda.device_array(scratch, dtype=np.int32)
        f_buf = cuda.device_array(scratch, dtype=np.int32)
        d_out = [cuda.device_array(n, dtype=np.int32) for _ in range(3)]
        blocks = (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
        sw_pairs[blocks, THREADS_PER_BLOCK](
            d_qs, cuda.to_device(q_off[lo:hi]), cuda.to_device(q_len[lo:hi]), d_rs, cuda.to_device(r_off[lo:hi]),
            cuda.to_device(r_len[lo:hi]), cuda.to_device(band_lo[lo:hi]), cuda.to_device(band_hi[lo:hi]), h_buf, f_buf,
            match, mismatch, gap_open, gap_extend, *d_out)
        for a, d in zip(out, d_out):
            a[lo:hi] = d.copy_to_host()
    cuda.synchronize()
    return tuple(out)
