"""The pairing kernels: insert-size model, mate-rescue windows, the joint choice and its MAPQ."""

import math

import numpy as np

from hpc.kernels.pairing import DEFAULT_MEAN, DEFAULT_STD, insert_model, pair_reads, rescue_windows

MATCH, PER_UNIT = 2.0, 20 / 6


def arrays(rows):
    """rows: (read, score, contig, strand, start) of 150-bp hits."""
    cols = list(zip(*rows))
    read, score, contig, strand, start = (np.array(c, dtype=t) for c, t in
                                          zip(cols, (np.int64, np.int32, np.int64, np.uint8, np.int64)))
    return read, score, contig, strand, start, start + 150


def pair(rows, n_reads=2, se=None, tied=None):
    read, score, contig, strand, start, end = arrays(rows)
    se = np.zeros(n_reads, np.int64) if se is None else np.array(se, np.int64)
    tied = np.zeros(n_reads, np.uint8) if tied is None else np.array(tied, np.uint8)
    return pair_reads(read, score, contig, strand, start, end, n_reads, 200, 500, 350.0, 35.0, MATCH, 34.0, PER_UNIT,
                      60, se, tied)


def test_the_insert_model_comes_from_the_middle_of_confident_pairs():
    rng = np.random.default_rng(1)
    inserts = np.concatenate([rng.normal(350, 35, 2000).astype(np.int64), [5000, 9000, 20]])  # a few chimeras
    mean, std, lo, hi = insert_model(inserts)
    assert abs(mean - 350) < 5 and abs(std - 35) < 4 and lo == int(mean - 4 * std) and hi == int(mean + 4 * std) + 1
    assert insert_model(inserts[:10])[:2] == (DEFAULT_MEAN, DEFAULT_STD)


def test_a_unique_mate_places_its_mate_in_a_repeat():
    # mate 1 (read 0) scores 300 at two copies (10_000 and 80_000, forward); mate 2 (read 1)
    # is unique, reverse, 200 bp right of the second copy: the pair picks that copy.
    prio, mapq, proper = pair([(0, 300, 0, 0, 10_000), (0, 300, 0, 0, 80_000), (1, 296, 0, 1, 80_200)],
                              se=[0, 60])
    assert prio.tolist() == [0, 1, 1] and proper.tolist() == [1, 1]
    assert mapq.tolist() == [40, 60]  # mate 1's own MAPQ was 0: lifted by at most 40


def test_a_mate_inside_a_tandem_array_keeps_its_own_mapq():
    # mate 2 lies inside a tandem array: its window holds equal shifts by whole units (its own
    # MAPQ 0), and which of them DP reported is arbitrary, so the unique mate 1 does not lift it
    rows = [(0, 300, 0, 0, 10_000), (1, 298, 0, 1, 10_200)]
    assert pair(rows, se=[60, 0])[1].tolist() == [60, 40]  # another copy's mate: lifted by the pair
    prio, mapq, proper = pair(rows, se=[60, 0], tied=[0, 1])
    assert prio.tolist() == [1, 1] and proper.tolist() == [1, 1] and mapq.tolist() == [60, 0]


def test_a_pair_inside_a_repeat_stays_at_mapq_0():
    # both mates have proper partners at both copies: two equal pairs, nothing to choose by
    prio, mapq, proper = pair([(0, 300, 0, 0, 10_000), (0, 300, 0, 0, 80_000),
                               (1, 298, 0, 1, 10_200), (1, 298, 0, 1, 80_200)])
    assert proper.tolist() == [1, 1] and mapq.tolist() == [0, 0] and prio.sum() == 2


def test_a_mate_beside_a_tandem_copy_is_placed_only_as_surely_as_the_insert_says():
    # mate 1 unique (MAPQ 60 alone); mate 2 matches equally at two copies 160 bp apart, both
    # within the insert range (300 and 460 bp): the pairs share mate 1, yet are rivals for
    # mate 2, whose MAPQ comes from the two inserts' likelihoods alone
    prio, mapq, proper = pair([(0, 300, 0, 0, 10_000), (1, 298, 0, 1, 10_150), (1, 298, 0, 1, 10_310)],
                              se=[60, 0])
    assert prio.tolist() == [1, 1, 0] and proper.tolist() == [1, 1]
    penalty = [0.721 * math.log(2 * math.erfc(abs(i - 350.0) / 35.0 / math.sqrt(2))) * MATCH for i in (300, 460)]
    assert mapq.tolist() == [60, round(PER_UNIT * (penalty[0] - penalty[1]))]
    assert 10 < mapq[1] < 30  # was 40: the pair's gap to the mates taken apart


COPIES = (10_000, 80_000, 150_000, 220_000)  # a repeat longer than the insert, four copies


def test_pairs_inside_a_repeat_spread_over_its_copies():
    # 400 pairs, each with equal proper pairs at the four copies, candidates listed lowest
    # position first (as seeding lists them): each copy gets about a quarter, not all the first
    rows = [row for p in range(400) for c in COPIES for row in ((2 * p, 300, 0, 0, c), (2 * p + 1, 298, 0, 1, c + 200))]
    read, score, contig, strand, start, end = arrays(sorted(rows, key=lambda r: (r[0], r[4])))
    prio, mapq, proper = pair_reads(read, score, contig, strand, start, end, 800, 200, 500, 350.0, 35.0, MATCH, 34.0,
                                    PER_UNIT, 60, np.zeros(800, np.int64), np.zeros(800, np.uint8))
    assert not mapq.any() and proper.all()
    chosen = start[prio == 1]
    assert chosen.shape[0] == 800
    first_mates = chosen[read[prio == 1] % 2 == 0]
    assert all(60 <= (first_mates == c).sum() <= 140 for c in COPIES), np.unique(first_mates, return_counts=True)
    # both mates of a pair at the same copy
    assert np.array_equal(chosen[read[prio == 1] % 2 == 1] - 200, first_mates)


def test_unpaired_mates_inside_a_repeat_spread_over_its_copies():
    # mate 2 has no candidate: each mate 1 is placed alone, at one of its four equal copies
    rows = [(2 * p, 300, 0, 0, c) for p in range(400) for c in COPIES]
    read, score, contig, strand, start, end = arrays(rows)
    prio, _, proper = pair_reads(read, score, contig, strand, start, end, 800, 200, 500, 350.0, 35.0, MATCH, 34.0,
                                 PER_UNIT, 60, np.zeros(800, np.int64), np.zeros(800, np.uint8))
    assert not proper.any()
    chosen = start[prio == 1]
    assert chosen.shape[0] == 400 and all(60 <= (chosen == c).sum() <= 140 for c in COPIES)


def test_mates_far_apart_or_on_two_contigs_are_not_a_proper_pair():
    for rows in ([(0, 300, 0, 0, 10_000), (1, 300, 0, 1, 60_000)],  # 50 kb apart
                 [(0, 300, 0, 0, 10_000), (1, 300, 1, 1, 10_200)],  # two contigs
                 [(0, 300, 0, 0, 10_000), (1, 300, 0, 0, 10_200)]):  # same strand
        prio, mapq, proper = pair(rows, se=[60, 60])
        assert proper.tolist() == [0, 0] and prio.tolist() == [1, 1] and mapq.tolist() == [60, 60]


def test_a_proper_pair_beats_a_slightly_better_unpaired_hit():
    # mate 2's best (300) is 40 kb away; 290 beside mate 1 makes the proper pair
    prio, mapq, proper = pair([(0, 300, 0, 0, 10_000), (1, 300, 0, 1, 50_000), (1, 290, 0, 1, 10_210)],
                              se=[60, 33])
    assert prio.tolist() == [1, 0, 1] and proper.tolist() == [1, 1]


def test_rescue_windows_lie_on_the_other_strand_beside_each_near_best_hit():
    # read 0: forward hits at two copies (equal), read 1: no candidate; read 2: reverse hit,
    # read 3 has a proper partner already. Read 4 scores too low to rescue from.
    read, score, contig, strand, start, end = arrays([(0, 300, 0, 0, 10_000), (0, 300, 0, 0, 80_000),
                                                      (2, 290, 0, 1, 30_000), (3, 290, 0, 0, 29_800),
                                                      (4, 40, 0, 0, 5_000)])
    out = rescue_windows(read, score, contig, strand, start, end, 6, 200, 500, np.array([100_000], np.int64), 90, 24)
    rows = sorted(zip(*(a.tolist() for a in out)))
    assert rows == [(1, 1, 0, 10_000, 10_500), (1, 1, 0, 80_000, 80_500)]


def test_each_rival_pair_takes_its_share_of_the_mapq():
    # three copies of a repeat longer than the pair, 70 kb apart; the mates score the same at
    # each, and only the inserts differ: 350 bp (the model's mean) at the first copy, 410 at
    # the other two. Two rivals as good as each other make the first copy's pair half as sure
    # as one would: 10 * log10(2) = 3 points less, for both mates.
    rows = [(0, 300, 0, 0, 10_000), (0, 300, 0, 0, 80_000), (0, 300, 0, 0, 150_000),
            (1, 300, 0, 1, 10_200), (1, 300, 0, 1, 80_260), (1, 300, 0, 1, 150_260)]
    prio, mapq, proper = pair(rows)
    assert prio.tolist() == [1, 0, 0, 1, 0, 0] and proper.tolist() == [1, 1]
    penalty = [0.721 * math.log(2 * math.erfc(abs(i - 350.0) / 35.0 / math.sqrt(2))) * MATCH for i in (350, 410)]
    one_rival = PER_UNIT * (penalty[0] - penalty[1])
    assert mapq.tolist() == [round(one_rival - 10 * math.log10(2))] * 2
    # with one of those copies gone, the one rival left sets the MAPQ alone
    _, mapq, _ = pair([r for r in rows if r[4] < 150_000])
    assert mapq.tolist() == [round(one_rival)] * 2
