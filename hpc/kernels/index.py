"""Numba kernels that build the reference's minimizer index from the packed genome. No I/O:
the output arrays may be memory-mapped files.

The build is a counting sort in two scans of the genome, so its memory is the index itself,
one counter per bucket and one batch buffer, never a list of every (k-mer, position) pair:
1. :func:`scan_minimizers` with ``mode=0`` counts the minimizers per bucket (top bits of
   the k-mer); a cumulative sum gives each bucket's offset;
2. the same scan with ``mode=1`` writes each minimizer's low bits (``rest``) and global
   position at its bucket's next free slot, in position order;
3. :func:`sort_buckets` sorts each bucket by ``rest`` (stable: equal k-mers keep position order).
Both scans gather minimizers into a batch and group it by the top bits of the bucket (one
stable radix pass) before counting or placing them, so each group's accesses stay within a
small part of the counters and the index: one random access per minimizer into arrays of
hundreds of MB cost a cache miss each (on 100 Mbp: 3.6 s of the counting scan and 9.5 s of
the placing one; the whole build takes about 5 s grouped, against 13.5 s).

Minimizer semantics are those of the read side (:mod:`hpc.kernels.seed`): canonical k-mers
(the smaller of the 2-bit value and its reverse complement's, palindromes skipped), hash
``c * 0x9E3779B97F4A7C15`` xor-shifted right by 29, the first smallest hash in each window
of ``w`` consecutive N-free k-mers of a contig (every N-free k-mer when the contig has no
more than ``w``); k-mers never cross a contig end. Each entry's key is ``c << 1 | o`` (``o``:
1 when the reverse complement was the smaller), split into bucket (top bits) and ``rest``
(the low ``shift`` bits, orientation last), so a k-mer's entries of both orientations lie
side by side in one bucket. The scan keeps the window's smallest hash and looks over the
window's ``w`` hashes again only when that one leaves it (a monotonic queue did the same in
twice the time: its pops are branches no predictor guesses).
"""

from __future__ import annotations

import numba
import numpy as np

from hpc.kernels.jit import NJIT
from hpc.kernels.packed import unpack_range
from hpc.kernels.seed import HASH_MUL, NO_HASH

INSERTION_MAX = 32  # buckets up to this size are insertion-sorted; larger ones use a merge sort
RING = 64  # the last k-mers' keys and hashes (a power of two, so no division per base); w <= 32
CHUNK = 1 << 16  # bases unpacked at a time
RADIX_BITS = 10  # a batch is grouped by this many top bits of the bucket (1,024 groups)


@numba.njit(**NJIT)
def _group_by_top_bits(keys, pos, n, shift, bits, keys2, pos2):
    """``keys[:n]`` and ``pos[:n]`` copied into ``keys2``/``pos2``, stably grouped by the top
    :data:`RADIX_BITS` of their bucket (``key >> shift``, ``bits`` wide), in one radix pass:
    the counters and slots that one group touches then lie within the core's cache (32 KB at
    2^23 buckets, 256 KB at 2^26). Fewer groups than that spread the pass's own writes over
    fewer places: 12 bits took 30% longer than 10 at 300 Mbp, 8 bits no less than 10."""
    step = min(RADIX_BITS, bits)
    low = shift + np.uint64(bits - step)
    hist = np.zeros((1 << step) + 1, dtype=np.int64)
    for i in range(n):
        hist[np.int64(keys[i] >> low) + 1] += 1
    for d in range(1 << step):
        hist[d + 1] += hist[d]
    for i in range(n):
        d = np.int64(keys[i] >> low)
        j = hist[d]
        hist[d] = j + 1
        keys2[j] = keys[i]
        pos2[j] = pos[i]


@numba.njit(**NJIT)
def _flush(mode, keys, pos, n, shift, bits, rest_mask, counts, slots, rest, positions, keys2, pos2):
    """Count (``mode=0``) or place (``mode=1``) one batch of minimizers, grouped by bucket."""
    _group_by_top_bits(keys, pos, n, shift, bits, keys2, pos2)
    if mode == 0:
        for i in range(n):
            counts[keys2[i] >> shift] += 1
    else:
        for i in range(n):
            bucket = keys2[i] >> shift
            slot = slots[bucket]
            slots[bucket] = slot + 1
            rest[slot] = keys2[i] & rest_mask
            positions[slot] = pos2[i]


@numba.njit(**NJIT)
def scan_minimizers(packed, nmask, starts, lengths, k, w, shift, bits, mode, counts, slots, rest, positions,
                    keys, pos, keys2, pos2):
    """One scan over every contig (see the module doc). ``mode=0`` counts per bucket into
    ``counts``; ``mode=1`` writes each minimizer at ``slots[bucket]`` (the bucket's next
    free entry, advanced). ``keys``/``pos`` and ``keys2``/``pos2`` are the batch and its
    radix buffer (equal lengths). Returns the minimizers found."""
    mask = (np.uint64(1) << np.uint64(2 * k)) - np.uint64(1)
    top = np.uint64(2 * (k - 1))
    rest_mask = (np.uint64(1) << np.uint64(shift)) - np.uint64(1)
    ring_v = np.empty(RING, dtype=np.uint64)
    ring_h = np.empty(RING, dtype=np.uint64)
    buf = np.empty(CHUNK, dtype=np.uint8)
    found = 0
    batch = keys.shape[0]
    filled = 0  # minimizers in the batch
    # The two places below that add a minimizer to the batch are written out: the same lines
    # as one inlined helper made this scan 45% slower (2.9 s against 2.0 s on 100 Mbp).
    for c in range(lengths.shape[0]):
        base = starts[c]
        n = lengths[c]
        nk = n - k + 1
        if nk <= 0:
            continue
        v = np.uint64(0)
        rc = np.uint64(0)
        last_n = -1
        best = -1  # the window's first smallest hash: its k-mer's start, and the hash
        best_h = NO_HASH
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
                rc = (rc >> np.uint64(2)) | (np.uint64(3 - b) << top)
                if i < k - 1:
                    continue
                p = i - k + 1
                key = np.uint64(0)
                if last_n >= p or v == rc:  # an N, or a palindrome (even k), whose strand is unknown
                    h = NO_HASH
                else:
                    c = v if v < rc else rc
                    key = (c << np.uint64(1)) | np.uint64(0 if v < rc else 1)
                    h = c * HASH_MUL
                    h ^= h >> np.uint64(29)
                if nk <= w:  # a short contig keeps every N-free k-mer
                    if h != NO_HASH:
                        keys[filled] = key
                        pos[filled] = base + p
                        filled += 1
                        found += 1
                        if filled == batch:
                            _flush(mode, keys, pos, filled, shift, bits, rest_mask, counts, slots, rest, positions,
                                   keys2, pos2)
                            filled = 0
                    continue
                ring_v[p & (RING - 1)] = key
                ring_h[p & (RING - 1)] = h
                if best < 0 or h < best_h:  # a smaller hash; an equal one leaves the earlier first
                    best = p
                    best_h = h
                elif best <= p - w:  # the smallest left the window: find the window's first smallest
                    best = p - w + 1
                    best_h = ring_h[best & (RING - 1)]
                    for q in range(p - w + 2, p + 1):
                        if ring_h[q & (RING - 1)] < best_h:
                            best = q
                            best_h = ring_h[q & (RING - 1)]
                if p < w - 1:
                    continue
                if best != last and best_h != NO_HASH:
                    last = best
                    keys[filled] = ring_v[best & (RING - 1)]
                    pos[filled] = base + best
                    filled += 1
                    found += 1
                    if filled == batch:
                        _flush(mode, keys, pos, filled, shift, bits, rest_mask, counts, slots, rest, positions,
                               keys2, pos2)
                        filled = 0
    _flush(mode, keys, pos, filled, shift, bits, rest_mask, counts, slots, rest, positions, keys2, pos2)
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
            while j < hi and (rest[j] >> 1) == (rest[i] >> 1):  # both orientations of one k-mer
                j += 1
            hist[min(j - i, cap)] += 1
            i = j
    return hist
