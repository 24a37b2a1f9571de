"""Numba kernels behind :mod:`tasks.genomics.seeding`: minimizer lookup and diagonal clustering,
one read at a time, so a shard needs no global sort of its seed hits. No I/O.

Semantics (kept in step with the index, :mod:`hpc.kernels.index`): a k-mer's
hash is ``v * 0x9E3779B97F4A7C15`` xor-shifted right by 29; a minimizer is the first
smallest hash in a window of ``w`` consecutive N-free k-mers of the read (the whole read
when it has fewer than ``w``); the reverse strand is the reverse-complemented read.
"""

from __future__ import annotations

import numba
import numpy as np

from hpc.kernels.jit import NJIT

HASH_MUL = np.uint64(0x9E3779B97F4A7C15)
NO_HASH = np.uint64(0xFFFFFFFFFFFFFFFF)


@numba.njit(**NJIT)
def _lookup(key, rest, table, shift):
    """The entries ``lo .. hi`` of the index that hold k-mer ``key``: its bucket by the top
    bits, then a binary search on the low bits."""
    bucket = np.int64(key >> shift)
    r = key & ((np.uint64(1) << shift) - np.uint64(1))
    lo = np.int64(table[bucket])
    hi = np.int64(table[bucket + 1])
    while lo < hi:
        mid = (lo + hi) >> 1
        if rest[mid] < r:
            lo = mid + 1
        else:
            hi = mid
    end = lo
    top = np.int64(table[bucket + 1])
    while end < top and rest[end] == r:
        end += 1
    return lo, end


@numba.njit(**NJIT)
def _strand_hits(seq, k, w, rest, positions, table, shift, max_occ, values, hashes, diag_out):
    """Seed hits of one strand of one read: fills ``diag_out`` with reference position minus
    query position per hit and returns how many."""
    m = seq.shape[0]
    nk = m - k + 1
    if nk <= 0:
        return 0
    mask = (np.uint64(1) << np.uint64(2 * k)) - np.uint64(1)
    v = np.uint64(0)
    last_n = -1  # position of the last N seen
    for i in range(m):
        b = seq[i]
        if b > 3:
            last_n = i
            b = 0
        v = ((v << np.uint64(2)) | np.uint64(b)) & mask
        if i >= k - 1:
            p = i - k + 1
            values[p] = v
            if last_n >= p:
                hashes[p] = NO_HASH
            else:
                h = v * HASH_MUL
                hashes[p] = h ^ (h >> np.uint64(29))
    span = w if nk > w else nk
    nh = 0
    last = -1
    for s in range(nk - span + 1):
        best = s
        for t in range(s + 1, s + span):
            if hashes[t] < hashes[best]:
                best = t
        if best == last or hashes[best] == NO_HASH:
            continue
        last = best
        lo, end = _lookup(values[best], rest, table, shift)
        count = end - lo
        if count == 0 or count > max_occ:
            continue
        for t in range(lo, end):
            diag_out[nh] = np.int64(positions[t]) - best
            nh += 1
    return nh


@numba.njit(**NJIT)
def seed_shard(codes, offsets, lengths, k, w, rest, positions, table, shift, complement,
               ref_starts, ref_lengths, max_candidates, min_votes, max_occ, margin, max_diag_gap, tie_extra):
    """Candidate windows of every read, both strands: seed hits clustered by diagonal (a gap
    over ``max_diag_gap`` starts a new cluster), clusters with at least ``min_votes`` hits
    ranked by votes (ties: forward strand, then lower diagonal), the best ``max_candidates``
    kept, and after them, when the last one kept has at least half the best's votes, those
    with as many votes as it, up to ``max_candidates + tie_extra`` (copies of a repeat that seeds cannot tell apart are all
    aligned, so MAPQ sees them). Returns ``(read, strand, contig, start, end, votes, qlen)``
    with contig-local window coordinates."""
    n = lengths.shape[0]
    cap = n * (max_candidates + tie_extra)
    o_read = np.empty(cap, dtype=np.int32)
    o_strand = np.empty(cap, dtype=np.uint8)
    o_contig = np.empty(cap, dtype=np.int32)
    o_start = np.empty(cap, dtype=np.int64)
    o_end = np.empty(cap, dtype=np.int64)
    o_votes = np.empty(cap, dtype=np.int32)
    o_qlen = np.empty(cap, dtype=np.int32)
    longest = 1
    for r in range(n):
        longest = max(longest, lengths[r])
    seq = np.empty(longest, dtype=np.uint8)
    values = np.empty(longest, dtype=np.uint64)
    hashes = np.empty(longest, dtype=np.uint64)
    diags = np.empty(longest * max_occ, dtype=np.int64)
    clusters = 2 * longest * max_occ // max(min_votes, 1) + 2  # each cluster holds min_votes hits
    c_strand = np.empty(clusters, dtype=np.uint8)
    c_dmin = np.empty(clusters, dtype=np.int64)
    c_dmax = np.empty(clusters, dtype=np.int64)
    c_votes = np.empty(clusters, dtype=np.int64)
    total = ref_starts[-1] + ref_lengths[-1] if ref_starts.shape[0] else 0
    out = 0
    for r in range(n):
        m = lengths[r]
        base = offsets[r]
        nc = 0
        for strand in range(2):
            for i in range(m):
                seq[i] = codes[base + i] if strand == 0 else complement[codes[base + m - 1 - i]]
            nh = _strand_hits(seq[:m], k, w, rest, positions, table, shift, max_occ, values, hashes, diags)
            if nh == 0:
                continue
            d = np.sort(diags[:nh])
            start = 0
            for i in range(1, nh + 1):
                if i == nh or d[i] - d[i - 1] > max_diag_gap:
                    if i - start >= min_votes:
                        c_strand[nc] = strand
                        c_dmin[nc] = d[start]
                        c_dmax[nc] = d[i - 1]
                        c_votes[nc] = i - start
                        nc += 1
                    start = i
        if nc == 0:
            continue
        order = np.argsort(-c_votes[:nc], kind="mergesort")
        take = min(nc, max_candidates)
        last = c_votes[order[take - 1]]
        if 2 * last >= c_votes[order[0]]:  # the kept ones are repeat copies, not a best and stray seeds
            while take < nc and take < max_candidates + tie_extra and c_votes[order[take]] >= last:
                take += 1
        for t in range(take):
            c = order[t]
            centre = min(max((c_dmin[c] + c_dmax[c]) // 2 + m // 2, 0), max(total - 1, 0))
            contig = np.searchsorted(ref_starts, centre, side="right") - 1
            lo = ref_starts[contig]
            hi = lo + ref_lengths[contig]
            o_read[out] = r
            o_strand[out] = c_strand[c]
            o_contig[out] = contig
            o_start[out] = min(max(c_dmin[c] - margin, lo), hi) - lo
            o_end[out] = min(max(c_dmax[c] + m + margin, lo), hi) - lo
            o_votes[out] = c_votes[c]
            o_qlen[out] = m
            out += 1
    return (o_read[:out], o_strand[:out], o_contig[:out], o_start[:out], o_end[:out], o_votes[:out],
            o_qlen[:out])
