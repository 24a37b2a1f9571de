"""Reads at the edge of being found: one seed in common with their locus (placed, as bwa-mem
places a read from one seed), and random reads with a chance seed hit (not reported: the
score floor)."""

import numpy as np
import pytest

from hpc.align_job import align_rank
from hpc.kernels.batch import score_floor
from hpc.manifest import RunSettings
from tasks.genomics import seeding
from tasks.genomics.encoding import encode_sequences, to_codes
from tasks.genomics.seeding import ReferenceIndex, find_candidates
from tasks.genomics.simulation import simulate_reference
from tasks.stage import write_staging

K, W = 15, 5  # RunSettings' seeding


@pytest.fixture(scope="module")
def reference():
    return simulate_reference(1, 50_000, seed=47)


@pytest.fixture(scope="module")
def index(reference):
    return ReferenceIndex.build([n for n, _ in reference], [to_codes(s) for _, s in reference], K, W)


def swap(base: int) -> int:
    return b"CGTA"[b"ACGT".index(base)]


SUBSTITUTED = range(3, 150, 8)  # every 8th base: 7 clean bases between, no k-mer in common


def one_seed_read(seq: bytes, start: int, index) -> bytes | None:
    """150 bases from ``start`` with a substitution every 8th base but one: one clean stretch
    of 15 bases, one k-mer in common with its locus; the read when seeding finds that one
    (it must be a minimizer of both), else None."""
    for kept in SUBSTITUTED[2:-2]:
        read = bytearray(seq[start:start + 150])
        for i in SUBSTITUTED:
            if i != kept:
                read[i] = swap(read[i])
        cands = find_candidates(index, encode_sequences(["r"], [bytes(read)]))
        if len(cands):
            return bytes(read)
    return None


def align(tmp_path, index, names, reads, settings=RunSettings(), mates=1):
    """Candidates, and each placed read's primary ``(start, mapq, score, proper)``."""
    shard = encode_sequences(names, reads, mates=mates)
    cands = find_candidates(index, shard)
    manifest, _ = write_staging(tmp_path / f"run-{settings.min_score}-{mates}", {}, index, [shard], [cands], settings)
    ((_, cols),), _ = align_rank(manifest, 0, 1)
    first = cols["primary"] == 1
    return cands, {int(r): (int(s), int(q), int(sc), int(pp)) for r, s, q, sc, pp in
                   zip(cols["read"][first], cols["wstart"][first] + cols["r_start"][first], cols["mapq"][first],
                       cols["score"][first], cols["proper"][first])}


def test_a_read_with_one_seed_in_common_with_its_locus_is_placed_at_a_low_mapq(tmp_path, reference, index,
                                                                                 monkeypatch):
    seq = reference[0][1]
    read = one_seed_read(seq, 20_000, index)
    assert read is not None
    cands, placed = align(tmp_path, index, ["noisy"], [read])
    assert cands.votes.tolist() == [1]  # one hit: no two on a diagonal, as seeding otherwise needs
    start, mapq, score, _ = placed[0]
    assert start == 20_000 and score >= 131 * 2 - 18 * 4  # the whole read, its 18 substitutions
    assert mapq <= 60 * (1 * (W + 1)) // 120  # one seed behind it: scaled down as minimap2 scales by anchors

    monkeypatch.setattr(seeding, "SINGLE_OCC", 0)
    assert len(find_candidates(index, encode_sequences(["noisy"], [read]))) == 0  # without the fallback: unmapped


def test_a_random_read_with_a_chance_seed_hit_is_not_reported(tmp_path, reference, index):
    """A random read that holds 24 bases of the genome: seeding finds it (two seeds on a
    diagonal), the alignment scores about 24 matches, under the floor of 30; a read with 40
    bases of the genome between random ones is reported."""
    seq = reference[0][1]
    rng = np.random.default_rng(5)
    junk = bytearray(b"ACGT"[i] for i in rng.integers(0, 4, 150))
    junk[60:84] = seq[12_000:12_024]
    partial = bytearray(b"ACGT"[i] for i in rng.integers(0, 4, 150))
    partial[60:100] = seq[33_000:33_040]
    cands, placed = align(tmp_path, index, ["junk", "partial"], [bytes(junk), bytes(partial)])
    assert cands.votes[cands.read == 0].tolist() == [2]  # the chance hit was seeded and aligned
    assert 0 not in placed  # but not reported: the read is unmapped
    assert placed[1][0] == 33_000 and placed[1][2] >= 2 * 40 - 8  # the other is placed, by its 40 bases
    _, stricter = align(tmp_path, index, ["junk", "partial"], [bytes(junk), bytes(partial)], RunSettings(min_score=100))
    assert stricter == {}  # --min-score 100: 40 bases' worth is not enough


def test_a_mate_above_the_floor_is_placed_and_paired_one_below_it_is_not(tmp_path, reference, index):
    """Pairs: mate 2 of the first holds 40 bases of the genome (about 80, above the default
    floor of 60, under mate rescue's 90), mate 2 of the second a chance 24 bases (about 48)."""
    seq = reference[0][1]
    rng = np.random.default_rng(9)
    rc = bytes.maketrans(b"ACGT", b"TGCA")

    def random_bases(n):
        return bytes(b"ACGT"[i] for i in rng.integers(0, 4, n))

    partial = (seq[20_200:20_240].translate(rc)[::-1] + random_bases(110))
    chance = bytearray(random_bases(150))
    chance[50:74] = seq[40_300:40_324].translate(rc)[::-1]
    names = ["ok", "ok", "junk", "junk"]
    reads = [seq[20_000:20_150], partial, seq[40_000:40_150], bytes(chance)]
    _, placed = align(tmp_path, index, names, reads, mates=2)
    assert abs(placed[1][0] - 20_200) <= 2 and 70 <= placed[1][2] < 90  # a random base may extend it
    assert placed[0][3] == placed[1][3] == 1  # a proper pair
    assert 3 not in placed and placed[2][0] == 40_000 and placed[2][3] == 0  # its mate unmapped: not a proper pair
    _, stricter = align(tmp_path, index, names, reads, RunSettings(min_score=100), mates=2)
    assert 1 not in stricter and 0 in stricter and stricter[0][3] == 0


def test_the_score_floor_is_min_score_or_half_a_short_read_s_perfect_match():
    assert RunSettings().min_score == 60  # 30 matches' worth at match 2
    assert score_floor(np.array([150, 60, 40, 1]), 2, 60).tolist() == [60, 60, 40, 2]
    assert score_floor(np.array([150, 60]), 2, 100).tolist() == [100, 60]


def test_min_score_travels_from_the_flow_s_parameters_to_the_manifest_s_settings():
    from flows.params import PipelineParams

    params = PipelineParams(reads="r.fq", reference="ref.fa", min_score=100)
    settings = params.run_settings((15, 5))
    assert settings.min_score == 100 and RunSettings.from_json(settings.to_json()) == settings
    assert PipelineParams(reads="r.fq", reference="ref.fa").run_settings((15, 5)).min_score == 60
