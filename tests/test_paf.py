import numpy as np
import pytest

from tasks.genomics.encoding import text_rows
from tasks.genomics.records import ShardReads, paf_bytes
from tasks.genomics.paf import Hit, evaluate, is_correct, mapq_bin, mapq_from_scores, truth_from_name


def test_truth_from_our_names_and_wgsim_names():
    t = truth_from_name("chr_1_1001_1150_-_7")
    assert (t.contig, t.start, t.end, t.strand) == ("chr_1", 1000, 1150, "-")
    w = truth_from_name("chr2_500_649_0:0:0_1:0:0_1a/1")
    assert (w.contig, w.start, w.end, w.strand) == ("chr2", 499, 649, None)
    assert truth_from_name("read42") is None


def hit(**kw):
    base = dict(qname="chr1_101_250_+_0", qlen=150, qstart=0, qend=150, strand="+", tname="chr1",
                tlen=1000, tstart=100, tend=250, nmatch=150, block=150, mapq=60, score=300, nm=0,
                cigar="150M")
    return Hit(**{**base, **kw})


def test_mapeval_rule():
    truth = truth_from_name("chr1_101_250_+_0")
    assert is_correct(hit(), truth)
    assert not is_correct(hit(strand="-"), truth)
    assert not is_correct(hit(tname="chr2"), truth)
    assert not is_correct(hit(tstart=400, tend=550), truth)
    assert is_correct(hit(tstart=220, tend=370), truth)  # overlap 30 of union 270: 11%
    assert not is_correct(hit(tstart=225, tend=375), truth)  # 25 of 275: 9%


def test_paf_line_has_minimap2_columns_and_tags():
    cols = hit().paf_line().split("\t")
    assert len(cols) == 16
    assert cols[:12] == ["chr1_101_250_+_0", "150", "0", "150", "+", "chr1", "1000", "100", "250", "150", "150", "60"]
    assert cols[12:] == ["tp:A:P", "AS:i:300", "NM:i:0", "cg:Z:150M"]


def test_mapq():
    assert mapq_from_scores(300, 300) == 0  # a tie is not guessed
    assert mapq_from_scores(300, 0) == 60
    assert mapq_from_scores(300, 294) == 20  # one mismatch (2 - -4) of gap
    assert mapq_from_scores(300, 288) == 40
    assert mapq_from_scores(300, 297, mismatch_cost=3) == 20
    assert mapq_from_scores(0, 0) == 0

    from hpc.mapq import scale_by_support

    # scaled by min(1, bases of seed support / 60), a seed hit every (w + 1) / 2 bases; unscaled without them
    votes = np.array([45, 20, 10, 4, 1])
    assert scale_by_support(np.array([60, 60, 60, 20, 60]), votes, 5).tolist() == [60, 60, 30, 4, 3]
    assert scale_by_support(np.array([60, 60, 60, 20, 60]), votes, 11).tolist() == [60, 60, 60, 8, 6]
    assert scale_by_support(np.array([60]), None, 5).tolist() == [60]
    assert mapq_bin(0) == "0-0" and mapq_bin(60) == "60" and mapq_bin(15) == "10-19"


def test_rank_columns_become_paf_lines_reverse_strand_flipped_secondary_mapq_0():
    cols = {k: np.array(v) for k, v in dict(
        shard=[0, 0], read=[1, 1], strand=[1, 0], contig=[0, 1], wstart=[1000, 50], primary=[1, 0],
        second=[270, 270], score=[280, 250], q_start=[5, 0], q_end=[140, 150], r_start=[16, 3],
        r_end=[151, 153], nmatch=[130, 140], block=[135, 150], nm=[5, 10], cigar=["135M", "150M"],
        mapq=[33, 12]).items()}
    reads = ShardReads(text_rows(np.array([b"a", b"r"])), np.array([100, 150]), np.array([0, 100]),
                       np.zeros(250, np.uint8), None)
    text = paf_bytes(cols, reads, text_rows(np.array([b"chr1", b"chr2"])), np.array([5000, 900]))
    first, other = (Hit.from_paf_line(line) for line in text.decode().splitlines())
    assert (first.qname, first.qstart, first.qend, first.strand, first.tstart, first.tend) == ("r", 10, 145, "-", 1016, 1151)
    assert first.primary and first.mapq == 33 and first.tlen == 5000 and first.cigar == "135M"
    assert not other.primary and other.mapq == 0 and other.tname == "chr2" and (other.tstart, other.tend) == (53, 203)
    assert text.decode().splitlines()[1].split("\t")[12] == "tp:A:S"


def test_evaluate_counts_unmapped_as_wrong():
    names = ["chr1_101_250_+_0", "chr1_501_650_+_1"]
    acc = evaluate([hit(), hit(qname="chr1_501_650_+_1", primary=False, tstart=500, tend=650)], names)
    assert acc["correct"] == 1 and acc["fraction_correct"] == 0.5
    assert evaluate([hit()], ["plain_name"]) is None


def test_paf_line_round_trip():
    h = hit(strand="-", nm=3, score=280, cigar="100M2I48M")
    assert Hit.from_paf_line(h.paf_line()) == h
    s = hit(primary=False, mapq=0)
    assert Hit.from_paf_line(s.paf_line()) == s


def test_dwgsim_names_give_each_mate_its_own_truth():
    name = "K-12-MG1655_1031780_1031495_1_0_0_0_1:0:0_1:0:0_0"
    one, two = truth_from_name(name, 1, 150), truth_from_name(name, 2, 148)
    assert (one.contig, one.start, one.end, one.strand) == ("K-12-MG1655", 1031779, 1031929, "-")
    assert (two.start, two.end, two.strand) == (1031494, 1031642, "+")
    assert truth_from_name(name + "/2", 0, 150).start == 1031494  # a single-end read keeps its /2


def test_accuracy_over_a_shard_of_pairs_scores_each_mate_by_its_own_truth():
    from tasks.genomics.paf import AccuracyCounter

    # dwgsim pairs: mate 1 at 101 (+), mate 2 at 401 (-), 150 bp each.
    names = ["chr1_101_401_0_1_0_0_0:0:0_0:0:0_a"] * 2 + ["chr1_1001_1301_0_1_0_0_0:0:0_0:0:0_b"] * 2 \
        + ["chr2_51_301_1_0_0_0_0:0:0_0:0:0_c"] * 2
    rows = {  # read 0 right; read 1 right, a secondary elsewhere; read 2 wrong strand; read 3 unmapped;
        # read 4 (reverse strand) right; read 5 on the wrong contig
        "read": np.array([0, 1, 1, 2, 4, 5]), "primary": np.array([1, 1, 0, 1, 1, 1]),
        "contig": np.array([0, 0, 1, 0, 1, 0]), "strand": np.array([0, 1, 0, 1, 1, 0]),
        "wstart": np.array([90, 390, 0, 990, 40, 290]), "r_start": np.array([10, 10, 0, 10, 10, 10]),
        "r_end": np.array([160, 160, 150, 160, 160, 160]), "mapq": np.array([60, 60, 0, 3, 60, 0]),
    }
    acc = AccuracyCounter()
    acc.add_rows(rows, names, np.full(6, 150), ["chr1", "chr2"], mates=2)
    out = acc.result()
    assert (out["reads_with_truth"], out["correct"]) == (6, 3)
    assert [(m["reads"], m["correct"]) for m in out["by_mate"]] == [(3, 2), (3, 1)]
    assert {b["mapq"]: (b["reads"], b["correct"]) for b in out["by_mapq"]} == {"60": (3, 3), "1-9": (1, 0),
                                                                             "0-0": (1, 0)}
    # beside each bin's wrong reads, how many its MAPQs say are wrong: 3 x 10^-6, 10^-0.3, 1
    assert {b["mapq"]: (b["wrong"], b["said_wrong"]) for b in out["by_mapq"]} == {"60": (0, 0.0), "1-9": (1, 0.5),
                                                                                 "0-0": (1, 1.0)}
    acc.add_rows({k: v[:0] for k, v in rows.items()}, ["no truth here"], np.full(1, 150), ["chr1"], mates=1)
    assert acc.result() is None


@pytest.mark.parametrize("collide", [False, True], ids=["hashes", "every hash the same"])
def test_dwgsim_kernel_parses_as_the_pattern_does(monkeypatch, collide):
    from tasks.genomics.paf import _dwgsim_arrays, _truth_arrays

    if collide:  # contigs told apart by their text when their hashes meet
        import hpc.kernels.text

        monkeypatch.setattr(hpc.kernels.text, "prefix_hashes", lambda names, widths, out: out.fill(7))
    from tasks.genomics.encoding import text_rows

    rng = np.random.default_rng(5)
    contigs = ["chr1", "K-12_MG1655_v2", "gi|49175990|ref|NC_000913.3|"]
    names = []
    for i in range(300):
        c = contigs[i % 3]
        p1, p2 = rng.integers(1, 10**7, 2)
        s1, s2 = rng.integers(0, 2, 2)
        suffix = ["", "/1", "/2"][rng.integers(0, 3)]
        names.append(f"{c}_{p1}_{p2}_{s1}_{s2}_{rng.integers(0, 2)}_{rng.integers(0, 2)}_{rng.integers(0, 9)}:0:"
                     f"{rng.integers(0, 99)}_0:{rng.integers(0, 9)}:0_{rng.integers(0, 10**6):x}{suffix}")
    lengths = rng.integers(0, 200, 300)
    tnames = ["chr1", "gi|49175990|ref|NC_000913.3|"]  # one contig the reference lacks
    for mates in (1, 2):
        rows = text_rows(np.array([n.encode() for n in names], dtype=np.bytes_))
        want, got = _truth_arrays(names, lengths, tnames, mates), _dwgsim_arrays(rows, lengths, tnames, mates)
        for w, g in zip(want, got):
            assert np.array_equal(w, g)
    for bad in ("chr1_101_250_+_0", "chr1_5_6_2_0_0_0_0:0:0_0:0:0_a", "_5_6_0_0_0_0_0:0:0_0:0:0_a",
                "chr1_5_6_0_0_0_0_0:0_0:0:0_a", "chr1_5_6_0_0_0_0_0:0:0_0:0:0_g"):
        rows = text_rows(np.array([names[0].encode(), bad.encode()], dtype=np.bytes_))
        assert _dwgsim_arrays(rows, np.array([150, 150]), tnames, 1) is None, bad


def test_accuracy_from_name_rows_falls_back_to_the_patterns():
    from tasks.genomics.paf import AccuracyCounter
    from tasks.genomics.encoding import text_rows

    names = ["chr1_101_250_+_0", "chr1_501_650_-_1"]  # ours: not dwgsim's, so the pattern path scores them
    rows = {"read": np.array([0, 1]), "primary": np.array([1, 1]), "contig": np.array([0, 0]),
            "strand": np.array([0, 0]), "wstart": np.array([100, 500]), "r_start": np.array([0, 0]),
            "r_end": np.array([150, 150]), "mapq": np.array([60, 60])}
    acc = AccuracyCounter()
    acc.add_rows(rows, text_rows(np.array([n.encode() for n in names], dtype=np.bytes_)), np.full(2, 150), ["chr1"])
    assert (acc.result()["reads_with_truth"], acc.result()["correct"]) == (2, 1)
