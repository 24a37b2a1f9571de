"""Reading bases out of the 2-bit packed reference (4 bases a byte, first base in the high
bits) and its 1-bit N mask (8 a byte, ``np.packbits`` order). No I/O: the arrays may be
memory-mapped files, so a window costs only the pages it touches."""

from __future__ import annotations

import numba
import numpy as np

from hpc.codec import CODE_N
from hpc.kernels.jit import NJIT


@numba.njit(**NJIT, inline="always")
def code_at(packed, nmask, p):
    """The base code (0..3, or 4 for N) at global position ``p``."""
    if (nmask[p >> 3] >> (7 - (p & 7))) & 1:
        return np.uint8(CODE_N)
    return np.uint8((packed[p >> 2] >> (6 - 2 * (p & 3))) & 3)


@numba.njit(**NJIT)
def unpack_range(packed, nmask, start, out):
    """Fill ``out`` with the codes at ``start .. start + len(out)``."""
    for t in range(out.shape[0]):
        out[t] = code_at(packed, nmask, start + t)
