"""The batch steps around the score kernel: gather, hit selection, batched traceback."""

import numpy as np
import pytest

from hpc.codec import reverse_complement
from hpc.genome import genome_from_codes
from hpc.kernels.batch import BAND_SLACK, cigar_text, gather_pairs, select_hits, trace_pairs, window_bands
from hpc.kernels.dispatch import full_band, score_batch
from hpc.kernels.scalar import cigar_string, sw_traceback, sw_traceback_band

SCORING = (2, -4, -6, -1)


def test_gather_reverse_complements_reverse_strand_queries():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 5, 40).astype(np.uint8)
    offsets, lengths = np.array([0, 10, 25]), np.array([10, 15, 15])
    ref = rng.integers(0, 4, 100).astype(np.uint8)
    read, strand = np.array([2, 0, 2], np.int32), np.array([1, 0, 0], np.uint8)
    genome = genome_from_codes(["c0"], [ref])
    qs, q_off, q_len, rs, r_off, r_len = gather_pairs(codes, offsets, lengths, read, strand, genome,
                                                      np.array([5, 0, 50]), np.array([30, 12, 100]))
    assert q_len.tolist() == [15, 10, 15] and r_len.tolist() == [25, 12, 50]
    assert np.array_equal(qs[0:15], reverse_complement(codes[25:40]))
    assert np.array_equal(qs[15:25], codes[0:10]) and np.array_equal(qs[25:40], codes[25:40])
    assert np.array_equal(rs[r_off[2]:], ref[50:100])


def test_select_hits_primary_secondary_and_runner_up():
    # read 0: best 300 on contig 0; an overlapping window of the same locus (290) is not a
    # second locus; contig 1 scores 280 (secondary, and the runner-up for MAPQ); 100 is too low.
    read = np.array([0, 0, 0, 0, 1, 2], np.int32)
    scores = np.array([290, 300, 280, 100, 250, 0], np.int32)
    contig = np.array([0, 0, 1, 1, 0, 0], np.int32)
    strand = np.zeros(6, np.uint8)
    start = np.array([1000, 1010, 50, 900, 0, 0], np.int64)
    end = start + 180
    pick, primary, second = select_hits(read, scores, contig, strand, start, end, 0.8, 5)
    assert pick.tolist() == [1, 2, 4] and primary.tolist() == [1, 0, 1]
    assert second.tolist() == [280, 280, 0]
    pick, primary, _ = select_hits(read, scores, contig, strand, start, end, 0.8, 0)
    assert pick.tolist() == [1, 4]  # no secondaries asked for


def test_exact_repeat_ties_pick_either_copy_not_always_the_first():
    # 400 reads, each with two loci scoring the same (an exact repeat), listed lower start
    # first as seeding lists them: about half pick each copy, and every pick has MAPQ's
    # runner-up equal to the best (a tie is never reported as unique).
    n = 400
    read = np.repeat(np.arange(n, dtype=np.int32), 2)
    scores = np.full(2 * n, 300, np.int32)
    contig = np.zeros(2 * n, np.int32)
    strand = np.zeros(2 * n, np.uint8)
    start = np.tile(np.array([1000, 50_000], np.int64), n) + np.repeat(np.arange(n, dtype=np.int64) * 7, 2)
    pick, primary, second = select_hits(read, scores, contig, strand, start, start + 180, 0.8, 0)
    assert primary.tolist() == [1] * n and second.tolist() == [300] * n
    upper = int((start[pick] >= 50_000).sum())
    assert 150 < upper < 250, upper
    again, _, _ = select_hits(read, scores, contig, strand, start, start + 180, 0.8, 0)
    assert np.array_equal(pick, again)  # a hash, not chance: the same input picks the same


@pytest.mark.parametrize("banded", [False, True], ids=["whole window", "window bands"])
def test_batched_traceback_matches_the_single_pair_traceback(banded):
    rng = np.random.default_rng(2)
    queries, windows = [], []
    for _ in range(50):
        w = rng.integers(0, 4, 190).astype(np.uint8)
        q = w[20:170].copy()
        q[rng.integers(0, 150, 3)] = rng.integers(0, 4, 3)
        if rng.random() < 0.3:  # a 12-base deletion: outside the first band, so the fallback runs
            q = np.concatenate([q[:60], q[72:]])
        if rng.random() < 0.2:  # half the read from elsewhere: its best local piece may be off the band
            q[:75] = rng.integers(0, 4, 75)
        queries.append(q)
        windows.append(w)
    q_len = np.array([len(q) for q in queries]); r_len = np.array([len(w) for w in windows])
    q_off = np.cumsum(q_len) - q_len; r_off = np.cumsum(r_len) - r_len
    batch = (np.concatenate(queries), q_off, q_len, np.concatenate(windows), r_off, r_len)
    wstart = np.full(50, 1000)
    band = window_bands(q_len, wstart, wstart + r_len, np.full(50, 10**6)) if banded else full_band(q_len, r_len)
    scores, q_ends, r_ends = score_batch("cpu")(*batch, *SCORING, band=band)
    pick = np.arange(50)
    coords, ops, lens, off = trace_pairs(*batch, *band, pick, scores, q_ends, r_ends, *SCORING, 6)
    cigars = [c.decode() for c in cigar_text(ops, lens, off)]
    for k in range(50):
        s, qs, qe, rs, re_, o, n = sw_traceback_band(queries[k], windows[k], *SCORING, band[0][k], band[1][k])
        assert coords[k, 0] == s == scores[k]
        assert (coords[k, 2], coords[k, 4]) == (qe, re_)
        assert cigars[k] == cigar_string(o, n)
        assert band[0][k] <= coords[k, 3] - coords[k, 1] <= band[1][k]  # it starts in its band


def test_window_bands_keep_a_contig_end_open():
    lo, hi = window_bands(np.array([150, 150, 150]), np.array([500, 0, 900]), np.array([682, 166, 1000]),
                          np.array([10**6, 10**6, 1000]))
    assert lo.tolist() == [-BAND_SLACK, -150, -BAND_SLACK]
    assert hi.tolist() == [182 - 150 + BAND_SLACK, 166 - 150 + BAND_SLACK, 100]


def test_ungapped_segment_is_the_traceback_of_a_gap_free_read():
    """The traceback's fast path: on a read with substitutions and Ns only (no indel), the best
    ungapped segment on the best end's diagonal is exactly what the full matrix traces."""
    from hpc.kernels.scalar import sw_score, ungapped_best

    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(300):
        w = rng.integers(0, 4, 200).astype(np.uint8)
        start = int(rng.integers(0, 50))
        q = w[start:start + 150].copy()
        hits = rng.integers(0, 150, int(rng.integers(0, 12)))
        q[hits] = rng.integers(0, 5, hits.shape[0])  # substitutions and Ns, some at the ends
        s, qe, re_ = sw_score(q, w, *SCORING)
        u, us, ue = ungapped_best(q, w, SCORING[0], SCORING[1], re_ - qe)
        full = sw_traceback(q, w, *SCORING)
        if full[5].shape[0] != 1:  # a gap scored higher than any ungapped segment: not the fast path
            assert u < s
            continue
        assert (u, us, ue) == (s, full[1], full[2]) and full[3] - full[1] == re_ - qe
        checked += 1
    assert checked > 250
