import numpy as np

from tasks.genomics.encoding import encode_sequences, to_codes
from tasks.genomics.paf import truth_from_name
from tasks.genomics.seeding import ReferenceIndex, find_candidates, kmer_values
from tasks.genomics.simulation import simulate_reads, simulate_reference


def test_kmer_values_and_n_validity():
    values, valid = kmer_values(to_codes(b"ACGTNAC"), 3)
    assert values[0] == 0b000110  # ACG
    assert valid.tolist() == [True, True, False, False, False]  # ACG CGT GTN TNA NAC


def test_kmers_do_not_cross_contigs():
    index = ReferenceIndex.build(["a", "b"], [to_codes(b"AAAA"), to_codes(b"CCCC")], 3)
    # 2 k-mers per contig; none spans the A|C junction.
    assert sorted(index.positions.tolist()) == [0, 1, 4, 5]


def test_candidates_cover_true_origin_on_both_strands():
    reference = simulate_reference(3, 20_000, seed=1)
    reads = simulate_reads(reference, 400, 150, 0.01, 0.001, seed=2)
    index = ReferenceIndex.build([n for n, _ in reference], [to_codes(s) for _, s in reference], 15)
    shard = encode_sequences([r.name for r in reads], [r.seq for r in reads])
    cands = find_candidates(index, shard, max_candidates=3)
    strands = {0: "+", 1: "-"}
    hit = 0
    for i, read in enumerate(reads):
        truth = truth_from_name(read.name)
        mine = np.nonzero(cands.read == i)[0]
        hit += any(
            index.names[cands.contig[p]] == truth.contig and strands[int(cands.strand[p])] == truth.strand
            and cands.start[p] <= truth.start and cands.end[p] >= truth.end
            for p in mine
        )
    assert hit / len(reads) >= 0.99
    assert np.all(cands.qlen == 150)


def test_read_without_seed_hits_has_no_candidate():
    reference = simulate_reference(1, 5_000, seed=3)
    index = ReferenceIndex.build(["chr1"], [to_codes(reference[0][1])], 15)
    shard = encode_sequences(["junk", "n"], [b"ACGT" * 10, b"N" * 60])
    assert len(find_candidates(index, shard)) == 0


def test_windows_are_clipped_to_the_contig():
    reference = simulate_reference(2, 2_000, seed=4)
    index = ReferenceIndex.build(["chr1", "chr2"], [to_codes(s) for _, s in reference], 15)
    start_read = reference[1][1][:150]  # at the very start of chr2
    cands = find_candidates(index, encode_sequences(["r"], [start_read]), margin=50)
    assert len(cands) == 1 and cands.contig[0] == 1 and cands.start[0] == 0 and cands.end[0] <= 2_000


def test_minimizers_are_a_subset_that_still_finds_the_origin():
    from tasks.genomics.seeding import minimizer_mask

    values, valid = kmer_values(to_codes(b"ACGTTGCAAGGCTTACGGATCCA" * 4), 5)
    every = minimizer_mask(values, valid, 1)
    some = minimizer_mask(values, valid, 4)
    assert np.array_equal(every, valid) and not (some & ~valid).any() and 0 < some.sum() < every.sum()
    # every window of 4 consecutive k-mers holds at least one minimizer
    assert all(some[i : i + 4].any() for i in range(len(some) - 3))
    reference = simulate_reference(2, 20_000, seed=11)
    reads = simulate_reads(reference, 300, 150, 0.01, 0.001, seed=12)
    index = ReferenceIndex.build([n for n, _ in reference], [to_codes(s) for _, s in reference], 15, 5)
    assert index.size < 0.5 * 2 * 20_000
    cands = find_candidates(index, encode_sequences([r.name for r in reads], [r.seq for r in reads]))
    found = sum(
        any(index.names[cands.contig[p]] == truth_from_name(r.name).contig and cands.start[p] <= truth_from_name(r.name).start
            for p in np.nonzero(cands.read == i)[0])
        for i, r in enumerate(reads))
    assert found / len(reads) >= 0.99


def test_a_read_inside_a_tandem_array_is_seeded_with_its_many_copy_minimizers(monkeypatch):
    # 150 copies of a 40-bp unit between random flanks: every minimizer of a read inside the
    # array occurs about 150 times, over the usual limit (64), so the first pass finds no
    # cluster; the second, up to RESCUE_OCC copies, places it in the array. A read of the
    # flank keeps its one candidate (no second pass).
    rng = np.random.default_rng(5)
    acgt = np.frombuffer(b"ACGT", np.uint8)
    unit = acgt[rng.integers(0, 4, 40)].tobytes()
    left, right = (acgt[rng.integers(0, 4, 5_000)].tobytes() for _ in range(2))
    genome = left + unit * 150 + right
    index = ReferenceIndex.build(["chr1"], [to_codes(genome)], 15, 5)
    inside, flank = genome[7_000:7_150], genome[1_000:1_150]
    shard = encode_sequences(["inside", "flank"], [inside, flank])
    cands = find_candidates(index, shard, max_candidates=3)
    got = cands.start[cands.read == 0]
    assert got.shape[0] >= 3 and all(5_000 - 16 <= s and s + 150 <= 5_000 + 6_000 + 16 for s in got)
    assert (cands.read == 1).sum() == 1 and cands.start[cands.read == 1][0] == 1_000 - 16
    from tasks.genomics import seeding

    monkeypatch.setattr(seeding, "RESCUE_OCC", 64)  # no second pass: the read inside has no candidate
    assert (find_candidates(index, shard, max_candidates=3).read == 0).sum() == 0


def test_a_repeat_read_is_seeded_again_when_a_few_rare_seeds_outvote_its_own_copies(monkeypatch):
    # 100 copies of a 300-bp unit: every minimizer of a read inside occurs about 100 times, over
    # the usual limit (64). The read carries a sequencing error at base 120, and the k-mers
    # across it occur once, elsewhere (a decoy: another copy's variant, in a real genome). The
    # first pass finds only the decoy's cluster; since far more of the read's minimizers were
    # masked than that cluster has votes, the read is seeded again and its copies win.
    rng = np.random.default_rng(8)
    acgt = np.frombuffer(b"ACGT", np.uint8)
    unit = bytearray(acgt[rng.integers(0, 4, 300)].tobytes())
    read = bytearray(unit[:150])
    read[120] = b"ACGT"[(b"ACGT".index(read[120]) + 1) % 4]
    decoy = bytes(read[100:145])
    left, right = (acgt[rng.integers(0, 4, 20_000)].tobytes() for _ in range(2))
    genome = left + bytes(unit) * 100 + right[:10_000] + decoy + right[10_000:]
    index = ReferenceIndex.build(["chr1"], [to_codes(genome)], 15, 5)
    shard = encode_sequences(["r"], [bytes(read)])
    decoy_at = 20_000 + 30_000 + 10_000 - 100  # where the read would start were the decoy its origin
    cands = find_candidates(index, shard, max_candidates=3)
    assert cands.start.shape[0] >= 3
    assert all(20_000 - 16 <= s and s + 150 <= 50_000 + 16 for s in cands.start)  # in the array
    assert not any(abs(int(s) + 16 - decoy_at) < 50 for s in cands.start)
    from tasks.genomics import seeding

    monkeypatch.setattr(seeding, "RESCUE_OCC", 64)  # no second pass: the decoy alone
    only = find_candidates(index, shard, max_candidates=3)
    assert only.start.shape[0] == 1 and abs(int(only.start[0]) + 16 - decoy_at) < 50


def test_the_occurrence_cut_off_is_minimap2s():
    """The count at which the most frequent 0.02% of distinct minimizers begin (here 2 of
    10,000), clamped below at 10."""
    from tasks.genomics.seeding import occurrence_limit

    hist = np.zeros(1 << 16, np.int64)
    hist[[1, 50, 200, 5000]] = [9990, 5, 3, 2]
    assert occurrence_limit(hist) == 200  # 2 at 5,000 and more are allowed; with those of 200, 5 are not
    hist[[1, 200]] = [9993, 0]
    assert occurrence_limit(hist) == 50
    hist[[1, 50, 5000]] = [10_000, 0, 0]
    assert occurrence_limit(hist) == 10  # nothing above the share: the floor
    assert occurrence_limit(np.zeros(1 << 16, np.int64)) == 10
