"""Numba kernels that build the reference's minimizer index from the packed genome. No I/O:
the output arrays may be memory-mapped files.

The build is a counting sort in two scans of the genome, so its memory is the index itself
plus one counter per bucket, never a list of (k-mer, position) pairs to sort:
1. :func:`scan_minimizers` with ``mode=0`` counts the minimizers per bucket (top bits of
   the k-mer); a cumulative sum gives each bucket's offset;
2. the same scan with ``mode=1`` writes each minimizer's low bits (``rest``) and global
   position at its bucket's next free slot, in position order;
3. :func:`sort_buckets` sorts each bucket by ``rest`` (stable: equal k-mers keep position order).

Minimizer semantics are those of the read side (:mod:`hpc.kernels.seed`): hash
``v * 0x9E3779B97F4A7C15`` xor-shifted right by 29, the first smallest hash in each window
of ``w`` consecutive N-free k-mers of a contig (every N-free k-mer when the contig has no
more than ``w``); k-mers never cross a contig end.
"""

from __future__ import annotations

import numba
import numpy as np

from hpc.kernels.jit import NJIT
from hpc.kernels.packed import unpack_range
from hpc.kernels.seed import HASH_MUL, NO_HASH

INSERTION_MAX = 32  # buckets up to this size are insertion-sorted; larger ones use a merge sort


RING = 64  # the window queue's ring (a power of two, so no division per base); w <= 32
CHUNK = 1 << 16  # bases unpacked at a time


@numba.njit(**NJIT, inline="always")
def _emit(mode, key, p, shift, rest_mask, counts, slots, rest, positions):
    bucket = key >> shift
    if mode == 0:
        counts[bucket] += 1
    else:
        slot = slots[bucket]
        slots[bucket] = slot + 1
        rest[slot] = key & rest_mask
        positions[slot] = p


@numba.njit(**NJIT)
def scan_minimizers(packed, nmask, starts, lengths, k, w, shift, mode, counts, slots, rest, positions):
    """One scan over every contig (see the module doc). ``mode=0`` counts per bucket into
    ``counts``; ``mode=1`` writes each minimizer at ``slots[bucket]`` (the bucket's next
    free entry, advanced). Returns the minimizers found."""
    mask = (np.uint64(1) << np.uint64(2 * k)) - np.uint64(1)
    rest_mask = (np.uint64(1) << np.uint64(shift)) - np.uint64(1)
    ring_v = np.empty(RING, dtype=np.uint64)
    ring_h = np.empty(RING, dtype=np.uint64)
    dq = np.empty(RING, dtype=np.int64)  # monotonic queue of k-mer starts, smallest hash in front
    buf = np.empty(CHUNK, dtype=np.uint8)
    found = 0
    for c in range(lengths.shape[0]):
        base = starts[c]
        n = lengths[c]
        nk = n - k + 1
        if nk <= 0:
            continue
        v = np.uint64(0)
        last_n = -1
        head = 0  # the queue is dq[head .. tail), indices taken & (RING - 1)
        tail = 0
        last = -1
        for chunk in range(0, n, CHUNK):
            m = min(CHUNK, n - chunk)
            unpack_range(packed, nmask, base + chunk, buf[:m])
            for j in range(m):
                i = chunk + j
                b = buf[j]
                if b > 3:
                    last_n = i
                    b = 0
                v = ((v << np.uint64(2)) | np.uint64(b)) & mask
                if i < k - 1:
                    continue
                p = i - k + 1
                if last_n >= p:
                    h = NO_HASH
                else:
                    h = v * HASH_MUL
                    h ^= h >> np.uint64(29)
                if nk <= w:  # a short contig keeps every N-free k-mer
                    if h != NO_HASH:
                        _emit(mode, v, base + p, shift, rest_mask, counts, slots, rest, positions)
                        found += 1
                    continue
                if tail > head and dq[head & (RING - 1)] <= p - w:  # the front left the window
                    head += 1
                ring_v[p & (RING - 1)] = v
                ring_h[p & (RING - 1)] = h
                while tail > head and ring_h[dq[(tail - 1) & (RING - 1)] & (RING - 1)] > h:
                    tail -= 1
                dq[tail & (RING - 1)] = p
                tail += 1
                if p < w - 1:
                    continue
                best = dq[head & (RING - 1)]
                if best != last and ring_h[best & (RING - 1)] != NO_HASH:
                    last = best
                    _emit(mode, ring_v[best & (RING - 1)], base + best, shift, rest_mask, counts, slots, rest,
                          positions)
                    found += 1
    return found


@numba.njit(**NJIT)
def sort_buckets(table, rest, positions):
    """Sort each bucket's entries by ``rest``, stably."""
    for b in range(table.shape[0] - 1):
        lo = np.int64(table[b])
        hi = np.int64(table[b + 1])
        if hi - lo <= 1:
            continue
        if hi - lo <= INSERTION_MAX:
            for i in range(lo + 1, hi):
                r = rest[i]
                p = positions[i]
                j = i - 1
                while j >= lo and rest[j] > r:
                    rest[j + 1] = rest[j]
                    positions[j + 1] = positions[j]
                    j -= 1
                rest[j + 1] = r
                positions[j + 1] = p
        else:
            order = np.argsort(rest[lo:hi], kind="mergesort")
            r = rest[lo:hi][order]
            p = positions[lo:hi][order]
            rest[lo:hi] = r
            positions[lo:hi] = p


@numba.njit(**NJIT)
def occurrence_histogram(table, rest, cap):
    """How many distinct k-mers occur 1, 2, ... times (the last bin: ``cap`` or more)."""
    hist = np.zeros(cap + 1, dtype=np.int64)
    for b in range(table.shape[0] - 1):
        lo = np.int64(table[b])
        hi = np.int64(table[b + 1])
        i = lo
        while i < hi:
            j = i + 1
            while j < hi and rest[j] == rest[i]:
                j += 1
            hist[min(j - i, cap)] += 1
            i = j
    return hist
