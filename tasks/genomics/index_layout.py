"""How large a reference's minimizer index and its build are, before either is made: the
index's layout (bucket bits and dtypes), its bytes, and the build's batch and buffers. Pure
arithmetic, so the memory check can run before the build starts."""

from __future__ import annotations

import numpy as np


def estimate_minimizers(total: int, n_contigs: int, w: int) -> int:
    """The minimizers a genome is expected to have: a density of 2 / (w + 1) on random
    sequence, and one more a contig."""
    return 2 * total // (w + 1) + n_contigs


def index_layout(total: int, n_contigs: int, k: int, w: int) -> dict:
    """Bucket bits and dtypes of an index over ``total`` bases: about 4-8 minimizers a bucket
    (at most 2^26 buckets), the k-mer's low bits in 32 bits when they fit, positions in 32
    bits below 4 Gbp."""
    if not 1 <= k <= 31:
        raise ValueError(f"k must be in 1..31, got {k}")
    if w < 1:
        raise ValueError(f"w must be at least 1, got {w}")
    expected = estimate_minimizers(total, n_contigs, w)
    bits = min(2 * k, max(8, min(26, expected.bit_length() - 2)))
    shift = 2 * k + 1 - bits  # keys are 2k + 1 bits: the canonical k-mer and its orientation
    return {"bits": bits, "shift": shift, "rest": "uint32" if shift <= 32 else "uint64",
            "position": "uint32" if total < 2**32 else "uint64"}


def estimate_index_bytes(total: int, n_contigs: int, k: int, w: int) -> int:
    """Bytes of the packed genome and its index (what every node keeps in its page cache)."""
    layout = index_layout(total, n_contigs, k, w)
    per = np.dtype(layout["rest"]).itemsize + np.dtype(layout["position"]).itemsize
    expected = estimate_minimizers(total, n_contigs, w)
    return total // 4 + total // 8 + expected * per + (1 << layout["bits"]) * 8


def build_batch(total: int, n_contigs: int, k: int, w: int) -> int:
    """Minimizers the build gathers before grouping them by bucket: as many as buckets (each
    scan then walks the counters a few times, in order), at least 2^20 and at most 2^24."""
    layout = index_layout(total, n_contigs, k, w)
    return min(max(1 << layout["bits"], 1 << 20), 1 << 24, estimate_minimizers(total, n_contigs, w) + 1)


def build_buffer_bytes(total: int, n_contigs: int, k: int, w: int, threads: int = 1) -> int:
    """Bytes of the build's buffers beside the index: each thread's batch and its radix buffer
    (384 MB at most), and each thread's counters past the first's (the index's own bytes count
    one set, as its table)."""
    layout = index_layout(total, n_contigs, k, w)
    batch = 2 * build_batch(total, n_contigs, k, w) * (8 + np.dtype(layout["position"]).itemsize)
    return threads * batch + (threads - 1) * 4 * (1 << layout["bits"])
