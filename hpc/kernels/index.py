"""Numba kernels that build the reference's minimizer index from the packed genome. No I/O:
the output arrays may be memory-mapped files.

The build is a counting sort, so its memory is the index itself, one counter per bucket and
one batch buffer, never a list of every (k-mer, position) pair in memory. The caller
(:func:`tasks.genomics.seeding.build_index`) drives it batch by batch:
1. :func:`sketch_segment` fills a batch with the minimizers of stretches of the genome, in
   position order; :func:`count_batch` counts them per bucket (top bits of the key), and
   the batch is written to a spill file; a cumulative sum gives each bucket's offset;
2. each batch, read back from the spill file, goes to :func:`place_batch`, which writes each
   minimizer's low bits (``rest``) and global position at its bucket's next free slot;
3. :func:`sort_buckets` sorts each bucket by ``rest`` (stable: equal k-mers keep position order).
The genome is sketched once. On 300 Mbp (k=15, w=5) the build took 22.0 s as two scans
that each sketched the genome and grouped every batch, 19.4 s counting ungrouped, and 16.0 s
with the spill file (the sketch 5.3 s, counting 1.4, placing 5.2, the spill's write and read
under 2).
Placing groups a batch by the top bits of the bucket first (one stable radix pass), so each
group's slot and index accesses stay within a small part of those arrays: one placement
after another, each a cache miss, took four times as long (2.8 s against 0.7 s for 16.7M
minimizers into 2^25 buckets).

Minimizer semantics are those of the read side (:mod:`hpc.kernels.seed`): canonical k-mers
(the smaller of the 2-bit value and its reverse complement's, palindromes skipped), hash
``c * 0x9E3779B97F4A7C15`` xor-shifted right by 29, the first smallest hash in each window
of ``w`` consecutive N-free k-mers of a contig (every N-free k-mer when the contig has no
more than ``w``); k-mers never cross a contig end. Each entry's key is ``c << 1 | o`` (``o``:
1 when the reverse complement was the smaller), split into bucket (top bits) and ``rest``
(the low ``shift`` bits, orientation last), so a k-mer's entries of both orientations lie
side by side in one bucket.
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
RADIX_BITS = 10  # a batch is grouped by this many top bits of the bucket (a 1,024-entry histogram)


@numba.njit(**NJIT)
def _group_by_top_bits(keys, pos, n, shift, bits, keys2, pos2):
    """``keys[:n]`` and ``pos[:n]`` copied into ``keys2``/``pos2``, stably grouped by the top
    :data:`RADIX_BITS` of their bucket (``key >> shift``, ``bits`` wide), in one radix pass:
    the slots that one group touches then lie within a few hundred KB (128 KB at 2^25
    buckets), mostly in cache."""
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
def count_batch(keys, n, shift, counts):
    """Count ``keys[:n]`` per bucket, as they come: the increments are independent, so the
    CPU overlaps their cache misses (0.25 s for 16.7M keys into 2^25 counters, against
    0.53 s grouped by bucket first)."""
    for i in range(n):
        counts[keys[i] >> shift] += 1


@numba.njit(**NJIT)
def place_batch(keys, pos, n, shift, bits, slots, rest, positions, keys2, pos2):
    """Write ``keys[:n]`` (their low ``shift`` bits) and ``pos[:n]`` at their buckets' next
    free slots (``slots``, advanced), grouped by bucket first (``keys2``/``pos2``: the radix
    buffer). Batches placed in position order keep each bucket in position order."""
    _group_by_top_bits(keys, pos, n, shift, bits, keys2, pos2)
    rest_mask = (np.uint64(1) << shift) - np.uint64(1)
    for i in range(n):
        bucket = keys2[i] >> shift
        slot = slots[bucket]
        slots[bucket] = slot + 1
        rest[slot] = keys2[i] & rest_mask
        positions[slot] = pos2[i]


@numba.njit(**NJIT)
def sketch_segment(packed, nmask, base, n, a, b, k, w, keys, pos, filled):
    """The minimizers of the contig at global offset ``base`` (``n`` bases) whose k-mer
    starts lie in ``a .. b`` (contig coordinates, ``b - a`` at most the room left in the
    batch), appended to ``keys``/``pos`` from ``filled`` in position order (see the module
    doc for their semantics); returns the new fill. The stretch is scanned from ``w - 1``
    k-mers before ``a`` to ``w - 1`` after ``b``, so every window that can choose a k-mer of
    the stretch is whole: the stretches of a contig together give exactly the minimizers of
    one scan of it, each once."""
    nk = n - k + 1
    if nk <= 0 or a >= b:
        return filled
    mask = (np.uint64(1) << np.uint64(2 * k)) - np.uint64(1)
    top = np.uint64(2 * (k - 1))
    short = nk <= w  # a short contig keeps every N-free k-mer
    lo = a if short else max(0, a - w + 1)  # k-mers lo .. hi are scanned
    hi = b if short else min(nk, b + w - 1)
    ring_v = np.empty(RING, dtype=np.uint64)
    ring_h = np.empty(RING, dtype=np.uint64)
    dq = np.empty(RING, dtype=np.int64)  # monotonic queue of k-mer starts, smallest hash in front
    buf = np.empty(CHUNK, dtype=np.uint8)
    v = np.uint64(0)
    rc = np.uint64(0)
    last_n = -1
    head = 0  # the queue is dq[head .. tail), indices taken & (RING - 1)
    tail = 0
    last = -1
    end = hi + k - 1  # bases lo .. end
    for chunk in range(lo, end, CHUNK):
        m = min(CHUNK, end - chunk)
        unpack_range(packed, nmask, base + chunk, buf[:m])
        for j in range(m):
            i = chunk + j
            bb = buf[j]
            if bb > 3:
                last_n = i
                bb = 0
            v = ((v << np.uint64(2)) | np.uint64(bb)) & mask
            rc = (rc >> np.uint64(2)) | (np.uint64(3 - bb) << top)
            p = i - k + 1
            if p < lo:
                continue
            key = np.uint64(0)
            if last_n >= p or v == rc:  # an N, or a palindrome (even k), whose strand is unknown
                h = NO_HASH
            else:
                c = v if v < rc else rc
                key = (c << np.uint64(1)) | np.uint64(0 if v < rc else 1)
                h = c * HASH_MUL
                h ^= h >> np.uint64(29)
            if short:
                if h != NO_HASH:
                    keys[filled] = key
                    pos[filled] = base + p
                    filled += 1
                continue
            if tail > head and dq[head & (RING - 1)] <= p - w:  # the front left the window
                head += 1
            ring_v[p & (RING - 1)] = key
            ring_h[p & (RING - 1)] = h
            while tail > head and ring_h[dq[(tail - 1) & (RING - 1)] & (RING - 1)] > h:
                tail -= 1
            dq[tail & (RING - 1)] = p
            tail += 1
            if p < w - 1:
                continue
            best = dq[head & (RING - 1)]
            if best != last and a <= best < b and ring_h[best & (RING - 1)] != NO_HASH:
                last = best
                keys[filled] = ring_v[best & (RING - 1)]
                pos[filled] = base + best
                filled += 1
    return filled


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
