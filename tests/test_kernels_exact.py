"""Vectorized and CUDA kernels are exact: equal to the scalar kernel and to parasail.

The CUDA kernel runs under numba's CUDA simulator here (NUMBA_ENABLE_CUDASIM=1, set in
conftest); on a GPU machine set NUMBA_ENABLE_CUDASIM=0 to run the same tests on the device.
"""

import numpy as np
import parasail
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hpc.kernels.dispatch import score_batch
from hpc.kernels.scoring import Scoring
from hpc.kernels.simd import INT16_SAFE, needs_wide

TEXT = np.frombuffer(b"ACGTN", dtype=np.uint8)


def pack(pairs):
    qs = [p[0] for p in pairs]
    rs = [p[1] for p in pairs]
    q_len = np.array([len(q) for q in qs], dtype=np.int64)
    r_len = np.array([len(r) for r in rs], dtype=np.int64)
    q_off = np.concatenate(([0], np.cumsum(q_len)[:-1])).astype(np.int64)
    r_off = np.concatenate(([0], np.cumsum(r_len)[:-1])).astype(np.int64)
    return np.concatenate(qs), q_off, q_len, np.concatenate(rs), r_off, r_len


def parasail_score(q, r, sc: Scoring) -> int:
    matrix = parasail.matrix_create("ACGTN", sc.match, sc.mismatch)
    for i in range(5):  # N mismatches everything, N included
        matrix.set_value(4, i, sc.mismatch)
        matrix.set_value(i, 4, sc.mismatch)
    # parasail's reference (non-vectorized) DP: its striped kernels return too low a score
    # when the gap-open penalty is 0 (sw_striped_32 gives 1 where sw and sw_scan_32 give 2
    # for AAAAAAAAAAAAAAAGGC vs AC, match 1, mismatch 0, free gaps), a case hypothesis found.
    return parasail.sw(TEXT[q].tobytes().decode(), TEXT[r].tobytes().decode(),
                       -sc.gap_open, -sc.gap_extend, matrix).score


@st.composite
def scorings(draw):
    match = draw(st.integers(1, 8))
    return Scoring(match, draw(st.integers(-10, match - 1)), *sorted(
        (draw(st.integers(-12, 0)), draw(st.integers(-12, 0)))))


@st.composite
def pair_sets(draw, max_len):
    pairs = []
    for _ in range(draw(st.integers(1, 6))):
        r = np.array(draw(st.lists(st.integers(0, 4), min_size=1, max_size=max_len)), dtype=np.uint8)
        if draw(st.booleans()):  # a read taken from its window, with a few edits
            lo = draw(st.integers(0, len(r) - 1))
            q = r[lo : lo + draw(st.integers(1, max_len))].copy()
            for k in draw(st.lists(st.integers(0, len(q) - 1), max_size=4)):
                q[k] = (q[k] + 1) % 5
        else:
            q = np.array(draw(st.lists(st.integers(0, 4), min_size=1, max_size=max_len)), dtype=np.uint8)
        pairs.append((q, r))
    return pairs


def check(kernel, pairs, sc: Scoring, with_parasail=True):
    data = pack(pairs)
    args = (sc.match, sc.mismatch, sc.gap_open, sc.gap_extend)
    got = score_batch(kernel)(*data, *args)
    ref = score_batch("scalar")(*data, *args)
    for k in range(3):
        assert np.array_equal(got[k], ref[k]), (kernel, k, got[k], ref[k])
    if with_parasail:
        assert [parasail_score(q, r, sc) for q, r in pairs] == got[0].tolist()


@example(pairs=[(np.array([0] * 15 + [2, 2, 1], dtype=np.uint8), np.array([0, 1], dtype=np.uint8))],
         sc=Scoring(1, 0, 0, 0))
@given(pairs=pair_sets(1000), sc=scorings())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_vectorized_equals_scalar_and_parasail(pairs, sc):
    check("cpu", pairs, sc)


@given(pairs=pair_sets(120), sc=scorings())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_cuda_equals_scalar_and_parasail(pairs, sc):
    check("cuda", pairs, sc)


def test_many_pairs_across_batches_and_threads():
    rng = np.random.default_rng(9)
    pairs = [(rng.integers(0, 5, int(rng.integers(1, 200))).astype(np.uint8),
              rng.integers(0, 5, int(rng.integers(1, 300))).astype(np.uint8)) for _ in range(700)]
    check("cpu", pairs, Scoring(), with_parasail=False)


@pytest.mark.parametrize("kernel", ["cpu", "cuda"])
@pytest.mark.parametrize("length", [999, 1000])
def test_scores_at_the_int16_edge(kernel, length):
    """match 32 x 999 = 31968 stays in int16 lanes; x 1000 = 32000 takes the int32 path."""
    sc = Scoring(match=32, mismatch=-4, gap_open=-6, gap_extend=-1)
    seq = np.random.default_rng(length).integers(0, 4, length).astype(np.uint8)
    assert bool(needs_wide(np.array([length]), np.array([length]), 32, -4, -6, -1)[0]) == (32 * length >= INT16_SAFE)
    pairs = [(seq, seq), (seq[:50], seq)]
    if kernel == "cuda":  # the simulator is slow: one long pair is enough
        pairs = [(seq[:300], seq)]
    check(kernel, pairs, sc)


def test_large_scores_need_the_wide_path():
    assert needs_wide(np.array([1000]), np.array([1000]), 40, -4, -6, -1).all()
    assert not needs_wide(np.array([150]), np.array([250]), 2, -4, -6, -1).any()


@pytest.mark.parametrize("kernel", ["cpu", "scalar", "cuda"])
def test_empty_sequence_is_refused(kernel):
    q = np.array([0, 1, 2], np.uint8)
    with pytest.raises(ValueError, match="pair 1: empty query"):
        score_batch(kernel)(*pack([(q, q), (q[:0], q)]), 2, -4, -6, -1)


def test_invalid_scoring_is_refused():
    q = np.array([0, 1, 2], np.uint8)
    with pytest.raises(ValueError, match="gap_open"):
        score_batch("cpu")(*pack([(q, q)]), 2, -4, 6, -1)
    with pytest.raises(ValueError, match="mismatch"):
        score_batch("cpu")(*pack([(q, q)]), 2, 3, -6, -1)


def banded_reference(q, r, sc: Scoring, lo: int, hi: int) -> tuple[int, int, int]:
    """Smith-Waterman over the whole matrix in plain Python, with H forced to 0 at every cell
    whose diagonal j - i is outside [lo, hi]: the banded kernels' contract, written the
    slow, obvious way. The first best cell in row-major order."""
    m, n = len(q), len(r)
    neg = -(10 ** 9)
    h = [[0] * (n + 1) for _ in range(m + 1)]
    f = [[neg] * (n + 1) for _ in range(m + 1)]
    best = (0, 0, 0)
    for i in range(1, m + 1):
        e = neg
        for j in range(1, n + 1):
            s = sc.match if q[i - 1] == r[j - 1] and q[i - 1] != 4 else sc.mismatch
            e = max(h[i][j - 1] + sc.gap_open, e + sc.gap_extend)
            f[i][j] = max(h[i - 1][j] + sc.gap_open, f[i - 1][j] + sc.gap_extend)
            v = max(0, h[i - 1][j - 1] + s, e, f[i][j])
            h[i][j] = v if lo <= j - i <= hi else 0
            if h[i][j] > best[0]:
                best = (h[i][j], i, j)
    return best


@st.composite
def banded_sets(draw, max_len):
    pairs = draw(pair_sets(max_len))
    bands = []
    for q, r in pairs:
        lo = draw(st.integers(-len(q) - 2, len(r) + 2))
        bands.append((lo, draw(st.integers(lo - 1, len(r) + 3))))  # hi < lo: an empty band
    return pairs, bands


@given(data=banded_sets(60), sc=scorings())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_banded_kernels_equal_the_banded_reference(data, sc):
    pairs, bands = data
    packed = pack(pairs)
    band = (np.array([b[0] for b in bands]), np.array([b[1] for b in bands]))
    args = (sc.match, sc.mismatch, sc.gap_open, sc.gap_extend)
    want = [banded_reference(q, r, sc, lo, hi) for (q, r), (lo, hi) in zip(pairs, bands)]
    for kernel in ("scalar", "cpu", "cuda"):
        got = score_batch(kernel)(*packed, *args, band=band)
        assert list(zip(*(g.tolist() for g in got))) == want, kernel


def test_a_band_as_wide_as_the_window_is_the_full_matrix():
    rng = np.random.default_rng(3)
    pairs = [(rng.integers(0, 5, int(rng.integers(1, 150))).astype(np.uint8),
              rng.integers(0, 5, int(rng.integers(1, 200))).astype(np.uint8)) for _ in range(300)]
    packed = pack(pairs)
    full = score_batch("cpu")(*packed, 2, -4, -6, -1)
    wide = score_batch("cpu")(*packed, 2, -4, -6, -1, band=(-packed[2] - 5, packed[5] + 5))
    narrow = score_batch("cpu")(*packed, 2, -4, -6, -1, band=(np.zeros(300, np.int64), packed[5] - packed[2]))
    assert all(np.array_equal(a, b) for a, b in zip(full, wide))
    assert (narrow[0] <= full[0]).all() and (narrow[0] < full[0]).any()
