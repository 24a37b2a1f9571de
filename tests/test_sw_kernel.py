"""The Numba kernel against parasail (C, SIMD) on random and edge cases."""

import numpy as np
import parasail
import pytest

from hpc.kernels.scalar import alignment_stats, cigar_string, sw_score, sw_score_batch, sw_traceback
from hpc.kernels.scoring import Scoring
from tasks.genomics.encoding import to_bytes

SC = Scoring()
ARGS = (SC.match, SC.mismatch, SC.gap_open, SC.gap_extend)


def parasail_matrix(match, mismatch):
    matrix = parasail.matrix_create("ACGTN", match, mismatch)
    for i in range(5):  # N is a mismatch against everything, N included
        matrix.set_value(4, i, mismatch)
        matrix.set_value(i, 4, mismatch)
    return matrix


MATRIX = parasail_matrix(SC.match, SC.mismatch)


def parasail_score(q, r, sc=SC, matrix=MATRIX):
    return parasail.sw_striped_16(to_bytes(q).decode(), to_bytes(r).decode(),
                                  -sc.gap_open, -sc.gap_extend, matrix).score


def rescore(q, r, qs, rs, ops, lens, sc=SC):
    """Score of a CIGAR, computed independently of the kernel."""
    score, qi, rj = 0, qs, rs
    for op, n in zip(ops.tolist(), lens.tolist()):
        if op == 0:
            for _ in range(n):
                same = q[qi] == r[rj] and q[qi] != 4
                score += sc.match if same else sc.mismatch
                qi += 1
                rj += 1
        else:
            score += sc.gap_open + (n - 1) * sc.gap_extend
            qi, rj = (qi + n, rj) if op == 1 else (qi, rj + n)
    return score


def mutate(rng, seq, rate):
    out = []
    for b in seq.tolist():
        u = rng.random()
        if u < rate / 3:
            continue
        if u < 2 * rate / 3:
            out.append(int(rng.integers(0, 4)))
        out.append(int(rng.integers(0, 4)) if u < rate else b)
    return np.array(out, dtype=np.uint8)


def check_pair(q, r):
    score, qe, re = sw_score(q, r, *ARGS)
    assert score == parasail_score(q, r)
    tb = sw_traceback(q, r, *ARGS)
    assert tb[0] == score
    if score > 0:
        _, qs, qe2, rs, re2, ops, lens = tb
        assert rescore(q, r, qs, rs, ops, lens) == score
        assert qe2 - qs == int(lens[ops != 2].sum()) and re2 - rs == int(lens[ops != 1].sum())


def test_random_related_pairs_match_parasail():
    rng = np.random.default_rng(11)
    for _ in range(300):
        window = rng.integers(0, 5 if rng.random() < 0.3 else 4, int(rng.integers(1, 260))).astype(np.uint8)
        lo = int(rng.integers(0, max(1, window.shape[0] - 10)))
        query = mutate(rng, window[lo : lo + int(rng.integers(1, 160))], 0.1)
        if query.shape[0] == 0:
            query = np.array([0], np.uint8)
        check_pair(query, window)


def test_random_unrelated_pairs_match_parasail():
    rng = np.random.default_rng(12)
    for _ in range(200):
        check_pair(rng.integers(0, 5, int(rng.integers(1, 90))).astype(np.uint8),
                   rng.integers(0, 5, int(rng.integers(1, 90))).astype(np.uint8))


@pytest.mark.parametrize("q,r", [
    ("AAAA", "CCCC"),                 # empty overlap: no positive cell
    ("NNNN", "NNNN"),                 # N never matches, not even N
    ("ACGTNACGT", "ACGTAACGT"),       # N inside an otherwise exact match
    ("ACGTACGTACGTTTGACCA", "CGTAC"),  # read longer than window
    ("A", "A"),
    ("ACGTTGCAACGT", "ACGTACGT"),     # gap needed
])
def test_edge_cases_match_parasail(q, r):
    from tasks.genomics.encoding import to_codes

    check_pair(to_codes(q.encode()), to_codes(r.encode()))


def test_other_scoring_matches_parasail():
    sc = Scoring(match=1, mismatch=-3, gap_open=-5, gap_extend=-2)
    matrix = parasail_matrix(1, -3)
    rng = np.random.default_rng(3)
    for _ in range(100):
        r = rng.integers(0, 4, 120).astype(np.uint8)
        q = mutate(rng, r[10:110], 0.08)
        s, _, _ = sw_score(q, r, sc.match, sc.mismatch, sc.gap_open, sc.gap_extend)
        assert s == parasail_score(q, r, sc, matrix)


def test_batch_equals_scalar():
    rng = np.random.default_rng(5)
    qs = [rng.integers(0, 5, int(rng.integers(1, 80))).astype(np.uint8) for _ in range(50)]
    rs = [rng.integers(0, 5, int(rng.integers(1, 120))).astype(np.uint8) for _ in range(50)]
    q_len = np.array([q.shape[0] for q in qs])
    r_len = np.array([r.shape[0] for r in rs])
    q_off = np.concatenate(([0], np.cumsum(q_len)[:-1]))
    r_off = np.concatenate(([0], np.cumsum(r_len)[:-1]))
    scores, q_end, r_end = sw_score_batch(np.concatenate(qs), q_off, q_len, np.concatenate(rs), r_off, r_len,
                                         -q_len, r_len, *ARGS)
    for p, (q, r) in enumerate(zip(qs, rs)):
        assert (scores[p], q_end[p], r_end[p]) == sw_score(q, r, *ARGS)


def test_cigar_and_stats():
    from tasks.genomics.encoding import to_codes

    q = to_codes(b"ACGTACGTTTACGTACGT")
    r = to_codes(b"GGACGTACGTACGTACGTGG")
    score, qs, qe, rs, re, ops, lens = sw_traceback(q, r, *ARGS)
    cigar = cigar_string(ops, lens)
    assert "I" in cigar or "D" in cigar or "M" in cigar
    nmatch, block, nm = alignment_stats(q, r, qs, rs, ops, lens)
    assert block == int(lens.sum()) and nmatch <= block and nm >= 0


@pytest.mark.parametrize("kwargs,field", [
    (dict(match=0), "match"),
    (dict(mismatch=3), "mismatch"),
    (dict(gap_open=2), "gap_open"),
    (dict(gap_extend=1), "gap_extend"),
])
def test_invalid_scoring_is_refused(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Scoring(**kwargs)


def test_banded_traceback_equals_full_when_the_band_holds_the_alignment():
    from hpc.kernels.scalar import sw_traceback_band

    rng = np.random.default_rng(21)
    hits = 0
    for _ in range(200):
        window = rng.integers(0, 4, int(rng.integers(20, 260))).astype(np.uint8)
        lo = int(rng.integers(0, max(1, window.shape[0] - 10)))
        query = mutate(rng, window[lo : lo + int(rng.integers(5, 160))], 0.05)
        if query.shape[0] == 0:
            continue
        full = sw_traceback(query, window, *ARGS)
        score, qe, re = sw_score(query, window, *ARGS)
        band = sw_traceback_band(query, window, *ARGS, re - qe - 8, re - qe + 8)
        assert band[0] <= full[0] == score
        if band[0] == full[0]:
            hits += 1
            _, qs, _, rs, _, ops, lens = band
            assert rescore(query, window, qs, rs, ops, lens) == score
    assert hits > 150
    # A full-width band is the full traceback.
    q, r = rng.integers(0, 4, 50).astype(np.uint8), rng.integers(0, 4, 80).astype(np.uint8)
    a, b = sw_traceback_band(q, r, *ARGS, -50, 80), sw_traceback(q, r, *ARGS)
    assert a[:5] == b[:5] and np.array_equal(a[5], b[5]) and np.array_equal(a[6], b[6])
