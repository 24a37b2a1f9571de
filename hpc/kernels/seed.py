"""Numba kernels behind :mod:`tasks.genomics.seeding`: minimizer lookup and diagonal clustering,
one read at a time, so a shard needs no global sort of its seed hits. No I/O. A read's
minimizers are looked up together, so their memory accesses overlap.

Semantics (kept in step with the index, :mod:`hpc.kernels.index`): minimizers are
canonical, as minimap2's are. A k-mer's canonical value ``c`` is the smaller of its 2-bit
value and its reverse complement's (a palindrome, possible for even k, is skipped); its hash
is ``c * 0x9E3779B97F4A7C15`` xor-shifted right by 29; a minimizer is the first smallest hash
in a window of ``w`` consecutive N-free k-mers of the read (the whole read when it has fewer
than ``w``). Index and lookups use the key ``c << 1 | o``, where ``o`` is 1 when the
reverse complement was the smaller. The same minimizers serve both strands of a read, so
each read is scanned and looked up once (it was once per strand): a hit whose orientation
matches the read's own places the read's forward strand, and one whose orientation differs
places its reverse complement.
"""

from __future__ import annotations

import numba
import numpy as np

from hpc.kernels.jit import NJIT

HASH_MUL = np.uint64(0x9E3779B97F4A7C15)
NO_HASH = np.uint64(0xFFFFFFFFFFFFFFFF)


@numba.njit(**NJIT)
def _minimizers(seq, k, w, values, hashes, keys, qpos, orient):
    """The canonical minimizers of a read, one pass for both strands: the lookup key of each
    (its canonical k-mer shifted left by one, see ``tasks.genomics.seeding.canonical_keys``), its query position
    and its orientation (0: the read's own k-mer is the canonical one). Returns how many.

    The window's minimum is carried from one window to the next and searched again only when
    it leaves the window (as minimap2's ``mm_sketch`` does), so a read costs about one
    comparison a k-mer, not ``w``: 0.56 -> 0.41 s for 400k reads at w=5, 0.62 -> 0.32 s at w=11."""
    m = seq.shape[0]
    nk = m - k + 1
    if nk <= 0:
        return 0
    mask = (np.uint64(1) << np.uint64(2 * k)) - np.uint64(1)
    top = np.uint64(2 * (k - 1))
    span = w if nk > w else nk
    v = np.uint64(0)
    rc = np.uint64(0)
    last_n = -1
    best = 0  # the first smallest hash of the window ending at p
    last = -1  # the minimizer emitted last
    nm = 0
    for i in range(m):
        b = seq[i]
        if b > 3:
            last_n = i
            b = 0
        v = ((v << np.uint64(2)) | np.uint64(b)) & mask
        rc = (rc >> np.uint64(2)) | (np.uint64(3 - b) << top)
        p = i - k + 1
        if p < 0:
            continue
        if last_n >= p or v == rc:  # an N, or a palindrome (even k), whose strand is unknown
            h = NO_HASH
            values[p] = 0
        else:
            c = v if v < rc else rc
            values[p] = (c << np.uint64(1)) | np.uint64(0 if v < rc else 1)
            h = c * HASH_MUL
            h = h ^ (h >> np.uint64(29))
        hashes[p] = h
        s = p - span + 1  # the window's first k-mer
        if best < s:  # the minimum left the window: search it again, the first smallest wins
            best = s
            for t in range(s + 1, p + 1):
                if hashes[t] < hashes[best]:
                    best = t
        elif h < hashes[best]:
            best = p
        if s >= 0 and best != last:
            if hashes[best] != NO_HASH:
                keys[nm] = values[best] & ~np.uint64(1)
                orient[nm] = np.uint8(values[best] & np.uint64(1))
                qpos[nm] = best
                nm += 1
            last = best
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
        r = keys[i] & rmask  # its low bit clear: the first of the k-mer's entries, either orientation
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
        half = r >> np.uint64(1)
        while end < top and (rest[end] >> np.uint64(1)) == half:
            end += 1
        lo_out[i] = lo
        hi_out[i] = end


@numba.njit(**NJIT)
def _clusters(mlo, mhi, mqpos, morient, nm, m, k, rest, positions, limit, diags, cap_d, min_votes, max_diag_gap,
              c_strand, c_dmin, c_dmax, c_votes):
    """A read's seed hits (minimizers of at most ``limit`` copies) clustered by diagonal, both
    strands: the clusters of at least ``min_votes`` hits go to ``c_*``; returns how many."""
    # One walk over the hits: those that place the forward strand fill diags from the
    # front, those that place the reverse complement from the back.
    fw = 0
    rv = cap_d
    for i in range(nm):
        count = mhi[i] - mlo[i]
        if count == 0 or count > limit:
            continue
        # The same orientation in read and reference: the read's forward strand; else its
        # reverse complement, where this k-mer starts at m - k - qpos.
        qf = mqpos[i]
        qr = m - k - mqpos[i]
        o = morient[i]
        for t in range(mlo[i], mhi[i]):
            if np.uint8(rest[t] & 1) == o:
                diags[fw] = np.int64(positions[t]) - qf
                fw += 1
            else:
                rv -= 1
                diags[rv] = np.int64(positions[t]) - qr
    nc = 0
    for strand in range(2):
        d = diags[:fw] if strand == 0 else diags[rv:cap_d]
        nh = d.shape[0]
        if nh == 0:
            continue
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
    return nc


@numba.njit(**NJIT)
def _cluster_buffers(n):
    """Room for ``n`` clusters: strand, lowest and highest diagonal, votes, and their order."""
    return (np.empty(n, dtype=np.uint8), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64),
            np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64))


@numba.njit(**NJIT)
def seed_shard(codes, offsets, lengths, k, w, rest, positions, table, shift,
               ref_starts, ref_lengths, max_candidates, min_votes, max_occ, margin, max_diag_gap, tie_extra,
               rescue_occ, single_occ):
    """Candidate windows of every read, both strands: seed hits clustered by diagonal (a gap
    over ``max_diag_gap`` starts a new cluster), clusters with at least ``min_votes`` hits
    ranked by votes (ties: forward strand, then lower diagonal), the best ``max_candidates``
    kept, and after them, when the last one kept has at least half the best's votes, those
    with as many votes as it, up to ``max_candidates + tie_extra`` (copies of a repeat that seeds cannot tell apart are all
    aligned, so MAPQ sees them). A read whose minimizers mostly occur over ``max_occ`` times
    (one inside a tandem array or a many-copy repeat), so that more of them were masked than
    its best cluster has votes (or it has none), is seeded again with those up to ``rescue_occ``
    times, as minimap2's short-read preset keeps minimizers of up to 1,000 copies: its few
    unmasked ones may be a sequencing error's chance match in another copy, outvoting its own.
    A read still without a cluster (errors every few bases: one minimizer left in common with
    its locus) takes the single hits of its minimizers of at most ``single_occ`` copies, as
    bwa-mem places a read from one seed (0: none); the align job then holds every read to a
    score floor, so a chance hit of a junk read is not reported. Returns ``(read, strand,
    contig, start, end, votes, qlen)`` with contig-local window coordinates."""
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
    values = np.empty(longest, dtype=np.uint64)
    hashes = np.empty(longest, dtype=np.uint64)
    cap_d = longest * max_occ  # a read's hits, both strands together
    diags = np.empty(cap_d, dtype=np.int64)
    mkeys = np.empty(longest, dtype=np.uint64)
    mqpos = np.empty(longest, dtype=np.int64)
    morient = np.empty(longest, dtype=np.uint8)
    mlo = np.empty(longest, dtype=np.int64)
    mhi = np.empty(longest, dtype=np.int64)
    clusters = 2 * longest * max_occ // max(min_votes, 1) + 2  # each cluster holds min_votes hits
    c_strand, c_dmin, c_dmax, c_votes, order = _cluster_buffers(clusters)
    total = ref_starts[-1] + ref_lengths[-1] if ref_starts.shape[0] else 0
    out = 0
    for r in range(n):
        m = lengths[r]
        base = offsets[r]
        nc = 0
        nm = _minimizers(codes[base:base + m], k, w, values, hashes, mkeys, mqpos, morient)
        _lookup_all(mkeys, nm, rest, table, shift, mlo, mhi)
        limit = max_occ
        need = 0
        for i in range(nm):
            count = mhi[i] - mlo[i]
            if count <= max_occ:
                need += count
        for attempt in range(2):
            if attempt == 1:  # few or no votes: the read's many-copy minimizers too, if it has any
                more = 0
                masked = 0
                for i in range(nm):
                    count = mhi[i] - mlo[i]
                    if max_occ < count <= rescue_occ:
                        more += count
                        masked += 1
                best = 0
                for c in range(nc):
                    best = max(best, c_votes[c])
                if more == 0 or best >= masked:
                    break
                limit = rescue_occ
                need += more
                if need > cap_d:
                    cap_d = need
                    diags = np.empty(cap_d, dtype=np.int64)
                if need // max(min_votes, 1) + 2 > c_votes.shape[0]:
                    clusters = need // max(min_votes, 1) + 2
                    c_strand, c_dmin, c_dmax, c_votes, order = _cluster_buffers(clusters)
            nc = _clusters(mlo, mhi, mqpos, morient, nm, m, k, rest, positions, limit, diags, cap_d, min_votes,
                           max_diag_gap, c_strand, c_dmin, c_dmax, c_votes)
        if nc == 0 and min_votes > 1 and single_occ > 0:
            few = min(single_occ, max_occ)
            hits = 0
            for i in range(nm):
                if mhi[i] - mlo[i] <= few:
                    hits += mhi[i] - mlo[i]
            if hits > c_votes.shape[0]:  # a cluster a hit at most (diags holds them: few <= max_occ)
                c_strand, c_dmin, c_dmax, c_votes, order = _cluster_buffers(hits)
            nc = _clusters(mlo, mhi, mqpos, morient, nm, m, k, rest, positions, few, diags, cap_d, 1, max_diag_gap,
                           c_strand, c_dmin, c_dmax, c_votes)
        if nc == 0:
            continue
        # By votes, most first, equal votes in the order found: insertion for the usual few
        # clusters (np.argsort cost two arrays a read), a stable sort for a repeat's many.
        if nc <= 32:
            for a in range(nc):
                j = a
                while j > 0 and c_votes[order[j - 1]] < c_votes[a]:
                    order[j] = order[j - 1]
                    j -= 1
                order[j] = a
        else:
            order[:nc] = np.argsort(-c_votes[:nc], kind="mergesort")
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
