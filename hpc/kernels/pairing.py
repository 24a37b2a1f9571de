"""Pairing kernels: the insert-size model, mate-rescue windows and the joint choice of both
mates' alignments, for shards of pairs (mate 1 at even, mate 2 at odd read numbers). No I/O.

As bwa-mem does: the insert size is learned from pairs whose mates both have one clear
best hit (same contig, forward mate left of the reverse one); a pair placed within
``[lo, hi]`` of that model scores the two alignments plus the log-likelihood of its insert,
and is preferred to the two best alignments taken apart unless those beat it by more than
``unpaired`` (bwa's pen_unpaired). Each mate's pair MAPQ comes from the gaps to the pairs
that put that mate at another locus (and to the mates taken apart), each rival's odds from
its gap, summed; it lifts the mate's own MAPQ by at most 40 (a mate in a repeat, placed by a
unique mate). Per mate, because two pairs that
share one mate are rivals for the other: a unique mate beside a tandem copy of its partner's
sequence, a few hundred bases on, says where the partner lies only by the insert's likelihood.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from hpc.kernels.batch import tie_key
from hpc.kernels.jit import NJIT

MIN_PAIRS = 25  # confident pairs needed to learn the insert size; fewer: the default model
DEFAULT_MEAN, DEFAULT_STD = 400.0, 150.0


@numba.njit(**NJIT)
def _best_two(read, scores, tstart, n_reads):
    """Per read: the best candidate (or -1) and the best score at another candidate. Of
    equal best scores, the one with the lowest :func:`tie_key` of its start (not the first:
    candidates come lowest position first, and a repeat's reads would pile on its first copy)."""
    best = np.full(n_reads, -1, dtype=np.int64)
    second = np.zeros(n_reads, dtype=np.int64)
    for c in range(read.shape[0]):
        r = read[c]
        b = best[r]
        if b < 0 or scores[c] > scores[b] or (scores[c] == scores[b]
                                              and tie_key(r, tstart[c]) < tie_key(r, tstart[b])):
            if b >= 0:
                second[r] = max(second[r], scores[b])
            best[r] = c
        else:
            second[r] = max(second[r], scores[c])
    return best, second


@numba.njit(**NJIT)
def _by_read(read, n_reads):
    """Candidates grouped by read: read r's are ``by_read[starts[r]:starts[r + 1]]``."""
    starts = np.zeros(n_reads + 1, dtype=np.int64)
    for c in range(read.shape[0]):
        starts[read[c] + 1] += 1
    for r in range(n_reads):
        starts[r + 1] += starts[r]
    fill = starts[:-1].copy()
    by_read = np.empty(read.shape[0], dtype=np.int64)
    for c in range(read.shape[0]):
        by_read[fill[read[c]]] = c
        fill[read[c]] += 1
    return starts, by_read


@numba.njit(**NJIT)
def _fr_insert(s1, e1, rev1, s2, e2, rev2):
    """Insert size of two alignments on one contig in forward-reverse orientation, else -1."""
    if rev1 == rev2:
        return -1
    if rev1:
        s1, e1, s2, e2 = s2, e2, s1, e1  # now 1 is the forward mate
    if s1 > e2 or e2 - s1 <= 0:
        return -1
    return e2 - s1


@numba.njit(**NJIT)
def confident_inserts(read, scores, contig, strand, tstart, tend, n_reads, margin):
    """Insert sizes of pairs whose mates each have a best hit ``margin`` above their next."""
    best, second = _best_two(read, scores, tstart, n_reads)
    out = np.empty(n_reads // 2, dtype=np.int64)
    k = 0
    for p in range(n_reads // 2):
        a, b = best[2 * p], best[2 * p + 1]
        if a < 0 or b < 0 or scores[a] - second[2 * p] < margin or scores[b] - second[2 * p + 1] < margin:
            continue
        if contig[a] != contig[b]:
            continue
        ins = _fr_insert(tstart[a], tend[a], strand[a], tstart[b], tend[b], strand[b])
        if ins > 0:
            out[k] = ins
            k += 1
    return out[:k]


def insert_model(inserts: np.ndarray) -> tuple[float, float, int, int]:
    """``(mean, std, lo, hi)`` of the insert size: from the middle of the confident pairs
    (outside 1.5 inter-quartile ranges cut, as bwa-mem does), ``hi`` at mean + 4 std."""
    if inserts.shape[0] < MIN_PAIRS:
        mean, std = DEFAULT_MEAN, DEFAULT_STD
    else:
        q1, q3 = np.percentile(inserts, [25, 75])
        iqr = max(q3 - q1, 1.0)
        kept = inserts[(inserts >= q1 - 1.5 * iqr) & (inserts <= q3 + 1.5 * iqr)]
        mean, std = float(kept.mean()), max(float(kept.std()), 1.0)
    return mean, std, max(1, int(mean - 4 * std)), int(mean + 4 * std) + 1


@numba.njit(**NJIT)
def rescue_windows(read, scores, contig, strand, tstart, tend, n_reads, lo, hi, contig_len, min_score, slack):
    """Windows where a mate should lie: beside every hit of a read that scores at least
    ``min_score`` and within ``slack`` of the read's best, where the mate has no candidate in
    a proper position: ``(read, strand, contig, start, end)``, the mate on the opposite strand,
    within ``hi``. Every near-best copy of a repeat gets its mate looked for, so a pair in a
    repeat meets its rival pairs (else seeding's cut to a few candidates per read would hide
    them, and the pair would look unique)."""
    best, _ = _best_two(read, scores, tstart, n_reads)
    starts, by_read = _by_read(read, n_reads)
    cap = read.shape[0]
    o_read = np.empty(cap, dtype=np.int64)
    o_strand = np.empty(cap, dtype=np.uint8)
    o_contig = np.empty(cap, dtype=np.int64)
    o_start = np.empty(cap, dtype=np.int64)
    o_end = np.empty(cap, dtype=np.int64)
    k = 0
    for a in range(read.shape[0]):
        r = read[a]
        if scores[a] < min_score or scores[a] < scores[best[r]] - slack:
            continue
        m = r ^ 1
        placed = False
        for t in range(starts[m], starts[m + 1]):
            c = by_read[t]
            if contig[c] == contig[a] and scores[c] >= min_score:
                ins = _fr_insert(tstart[a], tend[a], strand[a], tstart[c], tend[c], strand[c])
                if lo <= ins <= hi:
                    placed = True
                    break
        if placed:
            continue
        if strand[a] == 0:  # forward: the mate is reverse, to the right
            s, e = tstart[a], tstart[a] + hi
        else:
            s, e = tend[a] - hi, tend[a]
        s = max(s, 0)
        e = min(e, contig_len[contig[a]])
        if e - s < 20:
            continue
        o_read[k] = m
        o_strand[k] = 1 - strand[a]
        o_contig[k] = contig[a]
        o_start[k] = s
        o_end[k] = e
        k += 1
    return o_read[:k], o_strand[:k], o_contig[:k], o_start[:k], o_end[:k]


@numba.njit(**NJIT)
def _insert_penalty(ins, mean, std, match):
    """bwa-mem's log-likelihood of an insert: 0.721 * ln(2 * erfc(|z| / sqrt 2)) * match."""
    z = abs(ins - mean) / std
    p = 2.0 * math.erfc(z / math.sqrt(2.0))
    return 0.721 * math.log(max(p, 1e-300)) * match


@numba.njit(**NJIT)
def _pair_score(a, b, scores, contig, strand, tstart, tend, lo, hi, mean, std, match):
    """Candidates ``a`` and ``b`` (one of each mate) as a proper pair: their scores plus the
    insert's log-likelihood, or -inf when they are not one."""
    if contig[a] != contig[b] or scores[a] <= 0 or scores[b] <= 0:
        return -np.inf
    ins = _fr_insert(tstart[a], tend[a], strand[a], tstart[b], tend[b], strand[b])
    if ins < lo or ins > hi:
        return -np.inf
    return scores[a] + scores[b] + _insert_penalty(ins, mean, std, match)


@numba.njit(**NJIT)
def _odds(gap, per_unit):
    """A rival's likelihood against the best, from their score gap: 10^(-MAPQ of the gap / 10)."""
    return 10.0 ** (-per_unit * max(gap, 0.0) / 10.0)


@numba.njit(**NJIT)
def _grown(a):
    """``a`` in an array of twice its length."""
    out = np.empty(2 * a.shape[0], dtype=a.dtype)
    out[:a.shape[0]] = a
    return out


@numba.njit(**NJIT)
def _same_locus(a, c, contig, strand, tstart, tend):
    return contig[a] == contig[c] and strand[a] == strand[c] and tstart[a] < tend[c] and tstart[c] < tend[a]


@numba.njit(**NJIT)
def pair_reads(read, scores, contig, strand, tstart, tend, n_reads, lo, hi, mean, std, match, unpaired,
               per_unit, mapq_max, se_mapq, tied):
    """Choose both mates' alignments jointly. Returns ``(priority, mapq, proper)``:
    ``priority`` 1 marks the candidate each read should report as primary, ``mapq`` and
    ``proper`` are per read. ``per_unit``: MAPQ points per point of score gap; ``se_mapq``:
    each read's MAPQ as a single read; ``tied``: per read, whether its best alignment's own
    window holds another placement as good (a read inside a tandem array, shifted by whole
    units): the insert cannot choose between those, so such a mate keeps its own MAPQ."""
    best, _ = _best_two(read, scores, tstart, n_reads)
    priority = np.zeros(read.shape[0], dtype=np.int64)
    mapq = se_mapq.copy()
    proper = np.zeros(n_reads, dtype=np.uint8)
    counts, by_read = _by_read(read, n_reads)
    pair_a = np.empty(64, dtype=np.int64)
    pair_b = np.empty(64, dtype=np.int64)
    pair_s = np.empty(64, dtype=np.float64)
    for p in range(n_reads // 2):
        r1, r2 = 2 * p, 2 * p + 1
        b1, b2 = best[r1], best[r2]
        if b1 < 0 or b2 < 0 or scores[b1] <= 0 or scores[b2] <= 0:
            if b1 >= 0:
                priority[b1] = 1
            if b2 >= 0:
                priority[b2] = 1
            continue
        top, c1, c2, top_key = -np.inf, -1, -1, np.uint64(0)
        n = 0  # the proper pairs, kept for the rivals' pass
        for t1 in range(counts[r1], counts[r1 + 1]):
            a = by_read[t1]
            for t2 in range(counts[r2], counts[r2 + 1]):
                b = by_read[t2]
                s = _pair_score(a, b, scores, contig, strand, tstart, tend, lo, hi, mean, std, match)
                if s == -np.inf:
                    continue
                if n == pair_a.shape[0]:
                    pair_a, pair_b, pair_s = _grown(pair_a), _grown(pair_b), _grown(pair_s)
                pair_a[n], pair_b[n], pair_s[n] = a, b, s
                n += 1
                # Equal pairs (a repeat longer than the insert): the lowest hash of the pair and
                # where it lies wins, so the repeat's pairs spread over its copies; MAPQ is 0.
                key = tie_key(p, tstart[a] ^ (tstart[b] << 32) ^ contig[a])
                if s > top or (s == top and key < top_key):
                    top, c1, c2, top_key = s, a, b, key
        alone = scores[b1] + scores[b2] - unpaired
        if c1 < 0 or top < alone:
            priority[b1] = 1
            priority[b2] = 1
            continue
        priority[c1] = 1
        priority[c2] = 1
        proper[r1] = 1
        proper[r2] = 1
        # Each rival (a pair that puts the mate elsewhere, or the mates apart) is as likely,
        # against the chosen pair, as its score gap says; the mate's chance of being wrong is
        # their sum. So six copies of a repeat whose pairs differ only by a few bases of
        # insert take ~8 points more than one such copy would (bwa-mem's n_sub term).
        odds1 = odds2 = _odds(top - alone, per_unit)
        for i in range(n):
            if not _same_locus(pair_a[i], c1, contig, strand, tstart, tend):
                odds1 += _odds(top - pair_s[i], per_unit)
            if not _same_locus(pair_b[i], c2, contig, strand, tstart, tend):
                odds2 += _odds(top - pair_s[i], per_unit)
        for r, c, odds in ((r1, c1, odds1), (r2, c2, odds2)):
            if tied[r] and c == best[r]:  # the pair's alignment is one of equal shifts DP chose between
                continue
            q_pair = mapq_max if odds <= 0.0 else min(mapq_max, max(0, int(round(-10.0 * math.log10(odds)))))
            own = mapq[r] if c == best[r] else 0
            mapq[r] = min(mapq_max, max(own, min(q_pair, own + 40)))
    return priority, mapq, proper
