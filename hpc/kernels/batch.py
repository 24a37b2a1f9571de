"""Batch steps around the score kernel: gather pairs, pick hits per read, trace them back.

Pure array code (numpy and Numba), no I/O, so one call handles a whole shard instead of a
Python loop over reads.
"""

from __future__ import annotations

import numba
import numpy as np

from hpc.codec import COMPLEMENT
from hpc.genome import Genome
from hpc.kernels.jit import NJIT
from hpc.kernels.packed import unpack_range
from hpc.kernels.scalar import alignment_stats, sw_traceback_band, ungapped_best

# Diagonals either side of the best end that the traceback searches first. On 200k
# simulated reads (0.05% indels) a band of 3 never missed the best score; 6 leaves room
# for longer indels, and a miss falls back to the full matrix anyway.
TRACE_BAND = 6
SECONDARY_RATIO = 0.8  # a secondary alignment scores at least this share of the primary's


@numba.njit(**NJIT)
def _gather(codes, offsets, lengths, read, strand, packed, nmask, win_start, win_end, complement):
    n = read.shape[0]
    q_len = np.empty(n, dtype=np.int64)
    r_len = np.empty(n, dtype=np.int64)
    q_off = np.empty(n, dtype=np.int64)
    r_off = np.empty(n, dtype=np.int64)
    qt = 0
    rt = 0
    for p in range(n):
        q_off[p] = qt
        r_off[p] = rt
        q_len[p] = lengths[read[p]]
        r_len[p] = win_end[p] - win_start[p]
        qt += q_len[p]
        rt += r_len[p]
    qs = np.empty(qt, dtype=np.uint8)
    rs = np.empty(rt, dtype=np.uint8)
    for p in range(n):
        src = offsets[read[p]]
        dst = q_off[p]
        m = q_len[p]
        if strand[p]:
            for t in range(m):
                qs[dst + t] = complement[codes[src + m - 1 - t]]
        else:
            qs[dst:dst + m] = codes[src:src + m]
        unpack_range(packed, nmask, win_start[p], rs[r_off[p] : r_off[p] + r_len[p]])
    return qs, q_off, q_len, rs, r_off, r_len


def gather_pairs(codes: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, read: np.ndarray,
                 strand: np.ndarray, genome: Genome, win_start: np.ndarray, win_end: np.ndarray):
    """Queries (reverse-complemented where ``strand`` is 1) and windows of many candidates,
    concatenated: ``(qs, q_off, q_len, rs, r_off, r_len)`` for :func:`score_batch`.
    ``win_start``/``win_end`` are global positions in the packed genome (memory-mapped:
    only the windows' pages are read)."""
    return _gather(codes, offsets.astype(np.int64), lengths.astype(np.int64), read, strand, genome.packed,
                   genome.nmask,
                   win_start.astype(np.int64), win_end.astype(np.int64), COMPLEMENT)


BAND_SLACK = 8  # diagonals an alignment may use beyond those where the whole read is in its window


def window_bands(q_len: np.ndarray, wstart: np.ndarray, wend: np.ndarray,
                 contig_len: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The diagonals (window column minus read position) each candidate is aligned in: those
    on which the whole read lies inside its window, plus :data:`BAND_SLACK` each side. The
    window already holds seeding's margin for indels on both sides of the seeds' diagonals,
    so this keeps 16 + 8 bp of indel drift either way and leaves out the far corners,
    where only part of the read could align (about 1/3.7 of the cells of a 150-bp read in
    a 182-bp window). A side where the window was cut at a contig's end stays open: a read
    hanging over the end aligns there on a diagonal past the window's edge."""
    q = np.asarray(q_len, dtype=np.int64)
    n = np.asarray(wend, dtype=np.int64) - np.asarray(wstart, dtype=np.int64)
    lo = np.where(np.asarray(wstart) <= 0, -q, -BAND_SLACK)
    hi = np.where(np.asarray(wend) >= np.asarray(contig_len), n, n - q + BAND_SLACK)
    return lo.astype(np.int64), hi.astype(np.int64)


def band_cells(q_len: np.ndarray, r_len: np.ndarray, band: tuple[np.ndarray, np.ndarray]) -> int:
    """DP cells inside the bands (at most): per pair its rows times the band's width."""
    width = np.clip(band[1] - band[0] + 1, 0, np.asarray(r_len, dtype=np.int64))
    return int((np.asarray(q_len, dtype=np.int64) * width).sum())


@numba.njit(**NJIT)
def tie_key(read, start):
    """A hash of a read and a position: equal-scoring copies are chosen by it, so that reads in a
    repeat spread over its copies (as bwa-mem and minimap2 spread them), not pile on the first."""
    h = (np.uint64(read) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(start)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    return h ^ (h >> np.uint64(31))


LOCUS_TOLERANCE = 25  # alignments ending within twice this many bases are one locus (an indel moves an end by a few)


def locus_spans(win_start: np.ndarray, r_ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spans that :func:`select_hits` compares to tell loci apart: a few bases around where
    each candidate's best alignment ends, not its whole window (two windows of a tandem
    repeat overlap, yet their alignments are two placements, and MAPQ must see both)."""
    end = win_start.astype(np.int64) + r_ends.astype(np.int64)
    return end - LOCUS_TOLERANCE, end + LOCUS_TOLERANCE


def score_floor(qlen: np.ndarray, match: int, min_score: int) -> np.ndarray:
    """The least score an alignment of a read of ``qlen`` bases is reported with: ``min_score``
    (``--min-score``; 60 by default, 30 matches' worth, as bwa-mem's ``-T 30`` with its match
    of 1; minimap2 ``-x sr`` reports from 40 with match 2), or half a perfect match of a read
    too short for it; below it a read is unmapped. With the default scoring a random read's
    chance seed hit scores 32-44 (20,000 random 150-bp reads against E. coli, k=15), a
    40-base stretch of genome between poly-G 80."""
    half = match * ((np.asarray(qlen, dtype=np.int64) + 1) // 2)
    return np.maximum(np.minimum(half, min_score), 1)


def select_hits(read, scores, key_contig, key_strand, win_start, win_end, sec_ratio, max_secondary, priority=None,
                floor=None):
    """Per read: the best-scoring candidate (primary), the best score at another locus
    (``second``, for MAPQ), and up to ``max_secondary`` other loci scoring at least
    ``sec_ratio`` of the best. Two candidates are the same locus when their windows
    overlap on the same contig and strand. ``priority`` (pairs): a candidate marked 1 is the
    read's primary whatever its score (the pair chose it). ``floor``: each candidate's least
    reported score (:func:`score_floor`; default 1); a candidate below it is not reported but
    still counts as the runner-up. Returns ``(pick, is_primary, second)``, one entry per
    reported alignment, grouped by read, primary first; reads whose primary scores under its
    floor report nothing."""
    if priority is None:
        priority = np.zeros(read.shape[0], dtype=np.int64)
    floor = np.ones(read.shape[0], dtype=np.int64) if floor is None else np.asarray(floor, dtype=np.int64)
    return _select_hits(read, scores, priority.astype(np.int64), key_contig, key_strand, win_start, win_end,
                        sec_ratio, max_secondary, floor)


@numba.njit(**NJIT)
def _select_hits(read, scores, priority, key_contig, key_strand, win_start, win_end, sec_ratio, max_secondary,
                 floor):
    n = read.shape[0]
    order = np.argsort(read * np.int64(1 << 32) - priority * np.int64(1 << 30) - scores.astype(np.int64),
                       kind="mergesort")
    pick = np.empty(n, dtype=np.int64)
    primary = np.zeros(n, dtype=np.uint8)
    second = np.zeros(n, dtype=np.int32)
    npick = 0
    a = 0
    while a < n:
        b = a
        while b < n and read[order[b]] == read[order[a]]:
            b += 1
        best = order[a]
        # Equal best scores at different loci (an exact repeat): the pick is a hash of the
        # read and the window, not the candidates' order (lower diagonal first), so neither
        # copy is favoured; MAPQ is 0 either way.
        key = tie_key(read[best], win_start[best])
        for t in range(a + 1, b):
            c = order[t]
            if scores[c] != scores[best] or priority[c] != priority[best]:
                break
            kc = tie_key(read[c], win_start[c])
            if kc < key:
                order[a], order[t] = c, best
                best, key = c, kc
        if scores[best] > 0 and scores[best] >= floor[best]:
            first = npick
            pick[npick] = best
            primary[npick] = 1
            npick += 1
            runner_up = 0
            for t in range(a + 1, b):
                c = order[t]
                same_locus = False
                for u in range(first, npick):
                    o = pick[u]
                    if (key_contig[c] == key_contig[o] and key_strand[c] == key_strand[o]
                            and win_start[c] < win_end[o] and win_start[o] < win_end[c]):
                        same_locus = True
                        break
                if same_locus:
                    continue
                if runner_up == 0:
                    runner_up = scores[c]
                if (npick - first <= max_secondary and scores[c] > 0 and scores[c] >= floor[c]
                        and scores[c] >= sec_ratio * scores[best]):
                    pick[npick] = c
                    npick += 1
            for u in range(first, npick):
                second[u] = runner_up
        a = b
    return pick[:npick], primary[:npick], second[:npick]


@numba.njit(**NJIT)
def trace_pairs(qs, q_off, q_len, rs, r_off, r_len, band_lo, band_hi, pick, scores, q_ends, r_ends,
                match, mismatch, gap_open, gap_extend, band):
    """Trace back the picked pairs: the ungapped segment on the best end's diagonal when it
    scores the pair's score, else a band of ``band`` diagonals around the best end, and the
    pair's whole band (``band_lo``/``band_hi``, as it was scored) when that misses the best
    score. Returns ``(coords, cigar_ops,
    cigar_lens, cigar_off)``; ``coords[k]`` is ``score, q_start, q_end, r_start, r_end,
    matches, block, nm`` and pick k's CIGAR runs are ``cigar_*[cigar_off[k]:cigar_off[k+1]]``."""
    n = pick.shape[0]
    coords = np.zeros((n, 8), dtype=np.int64)
    cap = 0
    for k in range(n):
        cap += q_len[pick[k]] + r_len[pick[k]] + 1
    cig_ops = np.empty(cap, dtype=np.uint8)
    cig_lens = np.empty(cap, dtype=np.int32)
    cig_off = np.zeros(n + 1, dtype=np.int64)
    one_op = np.zeros(1, dtype=np.uint8)
    for k in range(n):
        p = pick[k]
        q = qs[q_off[p] : q_off[p] + q_len[p]]
        r = rs[r_off[p] : r_off[p] + r_len[p]]
        diag = r_ends[p] - q_ends[p]
        s, qst, qen = ungapped_best(q, r, match, mismatch, diag)
        if s == scores[p] and s > 0:  # most reads: one ungapped block, no matrix to trace
            rst, ren = qst + diag, qen + diag
            ops = one_op
            lens = np.full(1, qen - qst, dtype=np.int32)
        else:
            s, qst, qen, rst, ren, ops, lens = sw_traceback_band(q, r, match, mismatch, gap_open, gap_extend,
                                                                 max(diag - band, band_lo[p]),
                                                                 min(diag + band, band_hi[p]))
        if s != scores[p]:
            s, qst, qen, rst, ren, ops, lens = sw_traceback_band(q, r, match, mismatch, gap_open,
                                                                 gap_extend, band_lo[p], band_hi[p])
        mt, bl, nm = alignment_stats(q, r, qst, rst, ops, lens)
        coords[k, 0] = s
        coords[k, 1] = qst
        coords[k, 2] = qen
        coords[k, 3] = rst
        coords[k, 4] = ren
        coords[k, 5] = mt
        coords[k, 6] = bl
        coords[k, 7] = nm
        o = cig_off[k]
        for t in range(ops.shape[0]):
            cig_ops[o + t] = ops[t]
            cig_lens[o + t] = lens[t]
        cig_off[k + 1] = o + ops.shape[0]
    return coords, cig_ops[: cig_off[n]], cig_lens[: cig_off[n]], cig_off


_OP_LETTERS = np.frombuffer(b"MID", dtype=np.uint8)


@numba.njit(**NJIT)
def _cigar_rows(ops, lens, off, letters):
    n = off.shape[0] - 1
    width = 1
    for k in range(n):
        w = 0
        for t in range(off[k], off[k + 1]):
            v = lens[t]
            while True:
                w += 1
                v //= 10
                if v == 0:
                    break
            w += 1
        width = max(width, w)
    out = np.zeros((n, width), dtype=np.uint8)
    digits = np.empty(12, dtype=np.uint8)
    for k in range(n):
        p = 0
        for t in range(off[k], off[k + 1]):
            v = lens[t]
            nd = 0
            while True:
                digits[nd] = 48 + v % 10
                nd += 1
                v //= 10
                if v == 0:
                    break
            for d in range(nd - 1, -1, -1):
                out[k, p] = digits[d]
                p += 1
            out[k, p] = letters[ops[t]]
            p += 1
    return out


def cigar_text(ops: np.ndarray, lens: np.ndarray, off: np.ndarray) -> np.ndarray:
    """CIGAR text per pick from :func:`trace_pairs`' run arrays, as ASCII bytes (``S<width>``,
    NUL-padded: what collect reads back as rows). Built in one kernel: the list of Python
    strings it replaces cost 0.34 s a rank at 1M reads, and numpy text four bytes a character."""
    rows = _cigar_rows(ops, lens, off, _OP_LETTERS)
    return rows.view(f"S{rows.shape[1]}").reshape(rows.shape[0])