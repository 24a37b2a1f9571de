"""Kernel choice: ``cpu`` (vectorized), ``scalar`` (the int32 reference), ``cuda`` (GPU).

Every kernel is called through :func:`score_batch`, which refuses empty sequences and
invalid scoring with errors that name the pair or the field.
"""

from __future__ import annotations

import numpy as np

from hpc.choices import KERNELS, check_choice
from hpc.kernels.scoring import Scoring


def _kernel(kernel: str):
    check_choice("kernel", kernel, KERNELS)
    if kernel == "cpu":
        from hpc.kernels.simd import sw_score_batch_simd

        return sw_score_batch_simd
    if kernel == "scalar":
        from hpc.kernels.scalar import sw_score_batch

        return sw_score_batch
    from hpc.kernels.cuda import sw_score_batch_cuda

    return sw_score_batch_cuda


def check_pairs(q_len: np.ndarray, r_len: np.ndarray) -> None:
    for label, lengths in (("query (read)", q_len), ("reference window", r_len)):
        empty = np.nonzero(np.asarray(lengths) < 1)[0]
        if empty.size:
            raise ValueError(f"pair {int(empty[0])}: empty {label}; every pair needs at least one base")


def full_band(q_len: np.ndarray, r_len: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The band of diagonals that is the whole matrix of each pair."""
    return -np.asarray(q_len, dtype=np.int64), np.asarray(r_len, dtype=np.int64)


def score_batch(kernel: str):
    """(qs, q_off, q_len, rs, r_off, r_len, match, mismatch, gap_open, gap_extend, band=None) ->
    (scores, q_end, r_end), all int32, for the chosen kernel. ``band``: per pair the lowest
    and highest diagonal j - i (window column minus read position) an alignment may use;
    None: the whole window."""
    fn = _kernel(kernel)

    def run(qs, q_off, q_len, rs, r_off, r_len, match, mismatch, gap_open, gap_extend, band=None):
        Scoring(match, mismatch, gap_open, gap_extend)
        check_pairs(q_len, r_len)
        lo, hi = full_band(q_len, r_len) if band is None else band
        return fn(qs, q_off, q_len, rs, r_off, r_len, np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64),
                  match, mismatch, gap_open, gap_extend)

    return run
