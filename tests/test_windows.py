"""A rank's memory is one shard's: it gathers the bases of a shard's candidates a block at a
time (hpc/windows.py), with the same rows whatever the block, and it holds no rows of a shard
written while it aligns the next."""

import numpy as np
import pytest

import hpc.windows as windows
from hpc.align_job import align_rank
from hpc.rank_output import COLUMNS, load_rank_output
from hpc.manifest import RunSettings
from tasks.genomics.encoding import encode_sequences, to_codes
from tasks.genomics.seeding import ReferenceIndex, find_candidates
from tasks.genomics.simulation import simulate_reference
from tasks.stage import write_staging

COMPLEMENT = bytes.maketrans(b"ACGT", b"TGCA")


def revcomp(seq: bytes) -> bytes:
    return seq.translate(COMPLEMENT)[::-1]


def noisy(seq: bytes, every: int) -> bytes:
    """A substitution every ``every`` bases: too few clean k-mers to be seeded, still aligned."""
    out = bytearray(seq)
    for i in range(3, len(out), every):
        out[i] = b"CGTA"[b"ACGT".index(out[i])]
    return bytes(out)


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """Two shards of 120 pairs on 60 kb with a 900-bp tandem array: plain pairs, pairs whose
    second mate is too noisy to be seeded (mate rescue), and pairs with a mate in the array
    (an equal shift chosen by the insert)."""
    rng = np.random.default_rng(5)
    (name, seq), = simulate_reference(1, 60_000, seed=61)
    seq = seq[:30_000] + b"ACGTTG" * 150 + seq[30_000:]
    names, reads = [], []
    for i in range(240):
        kind = i % 3
        if kind == 2:  # mate 1 beside the array, mate 2 inside it
            start = int(rng.integers(29_700, 29_850))
        else:
            start = int(rng.integers(0, len(seq) - 400))
        insert = int(rng.integers(250, 350))
        mate1, mate2 = seq[start:start + 150], revcomp(seq[start + insert - 150:start + insert])
        if kind == 1:
            mate2 = noisy(mate2, 9)
        names += [f"p{i}/1", f"p{i}/2"]
        reads += [mate1, mate2]
    index = ReferenceIndex.build([name], [to_codes(seq)], 15, 5)
    shards = [encode_sequences(names[:240], reads[:240], mates=2), encode_sequences(names[240:], reads[240:], mates=2)]
    manifest, _ = write_staging(tmp_path_factory.mktemp("fsx") / "run", {}, index, shards,
                                [find_candidates(index, s) for s in shards], RunSettings())
    return manifest


def test_rows_are_the_same_whatever_the_block_and_no_gather_holds_more(staged, monkeypatch):
    whole, counters = align_rank(staged, 0, 1)
    assert counters["mate_rescues"] > 0
    sizes: list[int] = []
    placed: list[int] = []
    gather, place = windows.gather_pairs, windows.place_by_insert

    def counted_gather(codes, offsets, lengths, read, *rest):
        sizes.append(read.shape[0])
        return gather(codes, offsets, lengths, read, *rest)

    def counted_place(*args):
        placed.append(args[-6].shape[0])  # moves
        return place(*args)

    monkeypatch.setattr(windows, "BLOCK", 7)
    monkeypatch.setattr(windows, "gather_pairs", counted_gather)
    monkeypatch.setattr(windows, "place_by_insert", counted_place)
    blocked, _ = align_rank(staged, 0, 1)
    assert sizes and max(sizes) == 7
    assert sum(placed) > 0  # the array's mates went through place_by_insert, in blocks too
    assert [s for s, _ in whole] == [s for s, _ in blocked] == [0, 1]
    for (_, a), (_, b) in zip(whole, blocked):
        for column in COLUMNS:
            assert a[column].dtype == b[column].dtype and np.array_equal(a[column], b[column]), column


def test_each_step_in_blocks_equals_the_kernel_on_the_whole_batch(staged, monkeypatch):
    """Scores, shifted rivals, moves by insert and traceback, block by block, against each
    kernel called once on every candidate's bases gathered together (as the rank did before)."""
    import json

    from hpc.codec import BASE_MEMBERS, unpack_codes
    from hpc.genome import open_genome
    from hpc.kernels.batch import TRACE_BAND, window_bands
    from hpc.kernels.dispatch import score_batch
    from hpc.manifest import load_npz_verified, verify_entry

    root = staged.parent
    body = json.loads(staged.read_text())
    genome = open_genome(verify_entry(root, body["reference"]).parent)
    reads = load_npz_verified(root, body["shards"][0], BASE_MEMBERS)
    c = load_npz_verified(root, body["shards"][0]["candidates"])
    codes = unpack_codes(reads["packed"], reads["nmask"], int(reads["lengths"].sum()))
    w = windows.Windows.of(codes, reads, genome, c["read"], c["strand"], c["contig"], c["start"], c["end"])
    scoring, score = (2, -4, -6, -1), score_batch("cpu")
    band = window_bands(w.q_len, c["start"], c["end"], genome.lengths[c["contig"]])
    batch = w.gather(np.arange(c["read"].shape[0]))
    expected = score(*batch, *scoring, band=band)
    monkeypatch.setattr(windows, "BLOCK", 7)
    got = w.score(score, scoring, band)
    for e, g in zip(expected, got):
        assert np.array_equal(e, g)
    scores, q_ends, r_ends = got
    pick = np.nonzero(scores > 0)[0][::2]
    assert pick.shape[0] > 7
    assert np.array_equal(w.shifted(band, pick, q_ends, r_ends, 2, -4, 8),
                          windows.shifted_scores(*batch, *band, pick, q_ends, r_ends, 2, -4, 8))
    for e, g in zip(windows.trace_pairs(*batch, *band, pick, scores, q_ends, r_ends, *scoring, TRACE_BAND),
                    w.trace(band, pick, scores, q_ends, r_ends, scoring, TRACE_BAND)):
        assert np.array_equal(e, g)
    # the candidates on the array, each with a mate placed 300 bases on: those with equal shifts move
    moves = np.nonzero((c["start"] < 30_900) & (c["end"] > 30_000) & (scores > 0))[0]
    wstart = c["start"].astype(np.int64)
    mate_start = wstart[moves] + 300
    mate_end = mate_start + 150
    q_a, r_a = q_ends.copy(), r_ends.copy()
    moved = windows.place_by_insert(*batch, *band, scores, q_a, r_a, wstart, moves, mate_start, mate_end, 2, -4, 300.0)
    q_b, r_b = q_ends.copy(), r_ends.copy()
    w.place(band, scores, q_b, r_b, c["start"], moves, mate_start, mate_end, 2, -4, 300.0)
    assert moves.shape[0] > 7 and moved > 0 and np.array_equal(q_a, q_b) and np.array_equal(r_a, r_b)


def test_a_shard_s_rows_are_let_go_once_written_not_held_through_the_next(staged, tmp_path, monkeypatch):
    """The rows of a shard handed to the rank's output file are freed before the next shard is
    aligned (the generator and the writer each held them to the next shard's end: a run of
    more shards then peaked at its largest pair of shards' rows, not one's)."""
    import weakref

    import hpc.align_job as align_job

    written: list[weakref.ref] = []
    alive_at_start: list[int] = []
    real = align_job._align_shard

    def watched(*args):
        alive_at_start.append(sum(r() is not None for r in written))
        columns = real(*args)
        written.extend(weakref.ref(v) for v in columns[0].values())
        return columns

    monkeypatch.setattr(align_job, "_align_shard", watched)
    path, rows = align_job.write_rank_output(tmp_path, 0, align_job.rank_parts(staged, 0, 1))
    assert alive_at_start == [0, 0] and rows == load_rank_output(path)["read"].shape[0] > 0
    with np.load(path) as data:  # one member a shard (a reader's zip directory holds an entry per member)
        assert data.files == ["rows@0", "rows@1", "shards"]
