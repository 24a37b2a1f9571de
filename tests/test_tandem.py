"""A read's rivals inside its own window: other diagonals of a tandem array's window."""

import numpy as np

from hpc.kernels.batch import LOCUS_TOLERANCE, window_bands
from hpc.kernels.tandem import shifted_scores
from hpc.mapq import mapq_from_scores

MATCH, MISMATCH = 2, -4


def shifted(read: np.ndarray, window: np.ndarray, at: int) -> int:
    """The kernel on one read aligned ungapped at ``at`` in ``window``."""
    m, n = read.shape[0], window.shape[0]
    lo, hi = window_bands(np.array([m]), np.array([1_000]), np.array([1_000 + n]), np.array([10**6]))
    out = shifted_scores(read.astype(np.uint8), np.array([0]), np.array([m]), window.astype(np.uint8), np.array([0]),
                         np.array([n]), lo, hi, np.array([0]), np.array([m - 1]), np.array([at + m - 1]), MATCH,
                         MISMATCH, LOCUS_TOLERANCE)
    return int(out[0])


def test_a_read_inside_a_tandem_array_has_a_rival_in_its_own_window():
    rng = np.random.default_rng(3)
    unit = rng.integers(0, 4, 4)
    array = np.tile(unit, 150)  # 600 bp: the window of a read inside holds the whole array
    read = array[200:350]
    best = 150 * MATCH
    rival = shifted(read, array, 200)
    assert rival == best  # a shift by whole units, more than LOCUS_TOLERANCE away, aligns as well
    assert mapq_from_scores(best, rival) == 0


def test_a_unique_read_has_none_in_its_usual_window_nor_in_a_wide_one():
    rng = np.random.default_rng(4)
    genome = rng.integers(0, 4, 2_000)
    read = genome[1_016:1_166]
    assert shifted(read, genome[1_000:1_182], 16) == 0  # read + 2 x 16 bp: no diagonal 25 bp off
    wide = shifted(read, genome[800:1_400], 216)  # 600 bp, as a tandem cluster's window: random matches only
    assert 0 < wide < 15 * MATCH and mapq_from_scores(150 * MATCH, wide) == 60


def test_a_mate_inside_a_tandem_array_takes_the_shift_its_insert_makes_likeliest():
    # a 600-bp exact array (4-bp unit) between unique flanks, in a window starting at contig
    # position 10_000; the read, 150 bp of the array, was reported by DP 100 bp left of where
    # its mate (ending at 10_750) makes a 350-bp insert: it moves there, by whole units
    from hpc.kernels.tandem import place_by_insert

    rng = np.random.default_rng(7)
    window = np.concatenate([rng.integers(0, 4, 50), np.tile(rng.integers(0, 4, 4), 150), rng.integers(0, 4, 50)])
    read = window[100:250].astype(np.uint8)
    m, n = read.shape[0], window.shape[0]
    lo, hi = np.array([-m + 1]), np.array([n - 1])

    def moved(at: int, mate: tuple[int, int], score: int = 150 * MATCH) -> tuple[int, int, int]:
        q_ends, r_ends = np.array([m - 1]), np.array([at + m - 1])
        count = place_by_insert(read, np.array([0]), np.array([m]), window.astype(np.uint8), np.array([0]),
                                np.array([n]), lo, hi, np.array([score]), q_ends, r_ends, np.array([10_000]),
                                np.array([0]), np.array([mate[0]]), np.array([mate[1]]), MATCH, MISMATCH, 350.0)
        return count, int(q_ends[0]), int(r_ends[0])

    # placed at 100 (contig 10_100): insert 10_750 - 10_100 = 650; at 400 it is 350
    assert moved(100, (10_600, 10_750)) == (1, m - 1, 400 + m - 1)
    assert moved(400, (10_600, 10_750)) == (0, m - 1, 400 + m - 1)  # already the likeliest: stays
    # the mate on the left (9_750 .. 9_900): 350 bp would need the read before the array (at 50),
    # so it takes the first shift in it, 52 (the read's phase in the 4-bp unit)
    count, _, r_end = moved(300, (9_750, 9_900))
    assert count == 1 and r_end - (m - 1) == 52
    # a score no diagonal reaches ungapped (a gapped alignment): nothing moves
    assert moved(100, (10_600, 10_750), score=150 * MATCH + 1)[0] == 0
