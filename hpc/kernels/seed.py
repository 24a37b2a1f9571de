"""Numba kernels behind :mod:`tasks.genomics.seeding`: minimizer lookup and diagonal clustering,
one read at a time, so a shard needs no global sort of its seed hits. No I/O. A read's
minimizers (both strands) are looked up together, so their memory accesses overlap.

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
def _minimizers(seq, k, w, values, hashes, strand, keys, qpos, strands, nm):
    """Append the minimizers of one strand of a read (k-mer value, query position) to
    ``keys``/``qpos``/``strands`` from slot ``nm``; returns the new count."""
    m = seq.shape[0]
    nk = m - k + 1
    if nk <= 0:
        return nm
    mask = (np.uint64(1) << np.uint64(2 * k)) - np.uint64(1)
    v = np.uint64(0)
    last_n = -1
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
    last = -1
    for s in range(nk - span + 1):
        best = s
        for t in range(s + 1, s + span):
            if hashes[t] < hashes[best]:
                best = t
        if best == last or hashes[best] == NO_HASH:
            continue
        last = best
        keys[nm] = values[best]
        qpos[nm] = best
        strands[nm] = strand
        nm += 1
    return nm


@numba.njit(**NJIT)
def _lookup_all(keys, nm, rest, table, shift, lo_out, hi_out):
    """The entries ``lo_out[i] .. hi_out[i]`` of the index that hold k-mer ``keys[i]`` (its
    bucket by the top bits, then a binary search on the low bits), for ``keys[:nm]`` in
    passes over all of them: first every bucket's bounds, then every search, so the cache
    misses of different keys overlap instead of each waiting on the last (a read's ~100
    lookups took 2.3x as long one after the other)."""
    rmask = (np.uint64(1) << shift) - np.uint64(1)
    for i in range(nm):
        b = np.int64(keys[i] >> shift)
        lo_out[i] = np.int64(table[b])
        hi_out[i] = np.int64(table[b + 1])
    for i in range(nm):
        r = keys[i] & rmask
        lo = lo_out[i]
        top = hi_out[i]
        hi = top
        while lo < hi:
            mid = (lo + hi) >> 1
            if rest[mid] < r:
                lo = mid + 1
            else:
                hi = mid
        end = lo
        while end < top and rest[end] == r:
            end += 1
        lo_out[i] = lo
        hi_out[i] = end


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
    mkeys = np.empty(2 * longest, dtype=np.uint64)
    mqpos = np.empty(2 * longest, dtype=np.int64)
    mstrand = np.empty(2 * longest, dtype=np.uint8)
    mlo = np.empty(2 * longest, dtype=np.int64)
    mhi = np.empty(2 * longest, dtype=np.int64)
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
        nm = 0
        for strand in range(2):
            for i in range(m):
                seq[i] = codes[base + i] if strand == 0 else complement[codes[base + m - 1 - i]]
            nm = _minimizers(seq[:m], k, w, values, hashes, strand, mkeys, mqpos, mstrand, nm)
        _lookup_all(mkeys, nm, rest, table, shift, mlo, mhi)
        for strand in range(2):
            nh = 0
            for i in range(nm):
                count = mhi[i] - mlo[i]
                if mstrand[i] != strand or count == 0 or count > max_occ:
                    continue
                for t in range(mlo[i], mhi[i]):
                    diags[nh] = np.int64(positions[t]) - mqpos[i]
                    nh += 1
            if nh == 0:
                continue
            d = diags[:nh]
            d.sort()  # in place: no array per strand
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
