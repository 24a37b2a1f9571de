from tasks.collect import hit_from_row
from tasks.paf import Hit, evaluate, is_correct, mapq_bin, mapq_from_scores, truth_from_name


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
    assert mapq_from_scores(300, 300) == 0
    assert mapq_from_scores(300, 0) == 60
    assert 0 < mapq_from_scores(300, 250) < 60
    assert mapq_bin(0) == "0-0" and mapq_bin(60) == "60" and mapq_bin(15) == "10-19"


def test_reverse_strand_row_flips_query_span():
    row = dict(strand="1", q_start="5", q_end="140", wstart="1000", r_start="16", r_end="151",
               nmatch="130", block="135", score="250", second="0", nm="5", cigar="135M")
    h = hit_from_row(row, "r", 150, "chr1", 5000)
    assert (h.qstart, h.qend, h.strand, h.tstart, h.tend) == (10, 145, "-", 1016, 1151)


def test_evaluate_counts_unmapped_as_wrong():
    names = ["chr1_101_250_+_0", "chr1_501_650_+_1"]
    acc = evaluate([hit()], names)
    assert acc["correct"] == 1 and acc["fraction_correct"] == 0.5
    assert evaluate([hit()], ["plain_name"]) is None


def test_paf_line_round_trip():
    h = hit(strand="-", nm=3, score=280, cigar="100M2I48M")
    assert Hit.from_paf_line(h.paf_line()) == h
