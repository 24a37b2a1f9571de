"""Every Numba kernel on adversarial input: reads overhanging contig ends (windows clipped at
the boundary), indel-rich reads, long reads, N runs, reads shorter than k, bands wider than
the window. The last test runs this file again with bounds checking on and a fresh cache
(``cache=True`` would otherwise reuse code compiled without checks), so an out-of-bounds
access is an IndexError instead of a corrupted heap."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpc.align_job import align_rank
from hpc.rank_output import COLUMNS
from hpc.codec import CODE_N
from hpc.kernels.batch import TRACE_BAND
from hpc.kernels.scalar import sw_score, sw_traceback, sw_traceback_band
from hpc.manifest import RunSettings
from tasks.genomics.chunks import encode_chunk
from tasks.genomics.encoding import encode_sequences, to_bytes
from tasks.genomics.index_build import build_index
from tasks.genomics.seeding import ReferenceIndex, canonical_keys, find_candidates, minimizer_mask
from tasks.stage import write_staging

SC = (2, -4, -6, -1)
rng = np.random.default_rng(2026)


def random_codes(n: int) -> np.ndarray:
    return rng.integers(0, 4, n).astype(np.uint8)


def mutate(codes: np.ndarray, indels: int, subs: float) -> np.ndarray:
    out = codes.copy()
    flip = rng.random(out.shape[0]) < subs
    out[flip] = (out[flip] + rng.integers(1, 4, int(flip.sum()))) % 4
    for _ in range(indels):
        at, size = int(rng.integers(1, max(2, out.shape[0] - 1))), int(rng.integers(1, 11))
        out = np.concatenate([out[:at], random_codes(size), out[at:]]) if rng.random() < 0.5 else \
            np.concatenate([out[:at], out[at + size:]])
    return out


def adversarial_set() -> tuple[list[str], list[np.ndarray], list[str], list[bytes]]:
    """A reference of contigs from 40 bp to 20 kbp (N runs, a repeat) and reads that stress
    every boundary the kernels have."""
    contigs = [random_codes(40), random_codes(3_000), random_codes(20_000), random_codes(900)]
    contigs[2][5_000:5_300] = 4  # a run of N
    contigs[2][12_000:12_600] = contigs[2][2_000:2_600]  # an exact repeat
    names = [f"c{i}" for i in range(len(contigs))]
    reads: list[np.ndarray] = []
    for c in contigs:
        L = c.shape[0]
        for keep in (10, 30, 60, 120):
            keep = min(keep, L)
            reads.append(np.concatenate([c[L - keep:], random_codes(150 - keep)]))  # overhangs the end
            reads.append(np.concatenate([random_codes(150 - keep), c[:keep]]))  # overhangs the start
    big = contigs[2]
    for start in range(0, 19_000, 1_500):
        reads.append(mutate(big[start:start + 150], indels=5, subs=0.02))  # indel-rich
        reads.append(mutate(big[start:start + 1_000], indels=3, subs=0.01))  # long
    reads.append(np.concatenate([big[4_900:5_000], np.full(30, 4, np.uint8), big[5_300:5_320]]))  # N run
    reads.append(np.full(150, 4, np.uint8))  # all N
    reads += [big[7_000:7_000 + n] for n in (1, 5, 14, 15, 16)]  # around k
    reads.append(big[19_900:20_000])  # ends exactly at the contig's end
    rc = (3 - big[8_000:8_150])[::-1]
    reads.append(np.concatenate([rc, random_codes(40)]))  # reverse strand, overhanging
    seqs = [to_bytes(r) for r in reads]
    return names, contigs, [f"r{i}" for i in range(len(reads))], seqs


@pytest.mark.parametrize("kernel, mates", [("cpu", 1), ("scalar", 1), ("cpu", 2)])
def test_align_rank_on_adversarial_reads_stays_in_bounds(tmp_path, kernel, mates):
    """``mates`` 2: the same reads as pairs (neighbours are mates), so the insert model, mate
    rescue near contig ends and the joint choice run on them too."""
    names, contigs, read_names, seqs = adversarial_set()
    if mates == 2:
        if len(seqs) % 2:
            read_names, seqs = read_names[:-1], seqs[:-1]
        big = contigs[2]
        for x in (1_000, 6_000, big.shape[0] - 420, big.shape[0] - 160):  # the last: a rescue window off the end
            mate2 = (3 - big[x + 250:x + 400])[::-1].copy() if x + 400 <= big.shape[0] else random_codes(150)
            if x == 6_000:  # a substitution every 12 bases: no seed survives, only rescue finds it
                mate2[::12] = (mate2[::12] + 1) % 4
            seqs += [to_bytes(big[x:x + 150]), to_bytes(mate2)]
            read_names += [f"p{x}/1", f"p{x}/2"]
    index = ReferenceIndex.build(names, contigs, 15, 5)
    shard = encode_sequences([n for n in read_names[0::2] for _ in (0, 1)] if mates == 2 else read_names, seqs,
                             mates=mates)
    cands = find_candidates(index, shard, max_candidates=5)
    assert len(cands) > 0
    windows_clipped = int(((cands.start == 0) | (cands.end == index.lengths[cands.contig])).sum())
    assert windows_clipped > 0  # the boundary cases were exercised
    manifest, _ = write_staging(tmp_path, {}, index, [shard], [cands], RunSettings(max_secondary=3))
    parts, counters = align_rank(manifest, 0, 1, kernel)
    cols = {k: np.concatenate([p[k] for _, p in parts]) for k in COLUMNS}
    assert counters["pairs"] == len(cands)
    if mates == 2:
        assert counters["mate_rescues"] > 0 and cols["proper"].any()
    lengths = shard.lengths.astype(np.int64)
    for row in range(cols["read"].shape[0]):
        qlen = int(lengths[cols["read"][row]])
        q0, q1, r0, r1 = (int(cols[k][row]) for k in ("q_start", "q_end", "r_start", "r_end"))
        wlen = int(index.lengths[cols["contig"][row]]) - int(cols["wstart"][row])
        assert 0 <= q0 <= q1 <= qlen and 0 <= r0 <= r1 <= wlen
        runs = re.findall(r"(\d+)([MID])", str(cols["cigar"][row]))
        assert sum(int(n) for n, op in runs if op in "MI") == q1 - q0
        assert sum(int(n) for n, op in runs if op in "MD") == r1 - r0


def test_band_that_leaves_the_window_returns_the_full_alignment():
    """The case that corrupted the heap: a read overhanging a window clipped at a contig end,
    traced in a band that runs past the window's last column."""
    r = random_codes(60)
    q = np.concatenate([r[10:], random_codes(100)])
    s, q_end, r_end = sw_score(q, r, *SC)
    diag = r_end - q_end
    band = sw_traceback_band(q, r, *SC, diag - TRACE_BAND, diag + TRACE_BAND)
    full = sw_traceback(q, r, *SC)
    assert band[0] == full[0] == s == 100
    assert band[1:5] == full[1:5] == (0, 50, 10, 60)


codes = st.lists(st.sampled_from([0, 1, 2, 3, 4]), min_size=1, max_size=120).map(
    lambda xs: np.array(xs, dtype=np.uint8))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(q=codes, r=codes, lo=st.integers(-130, 130), width=st.integers(0, 260))
def test_any_band_traces_within_the_matrix(q, r, lo, width):
    """Bands anywhere, wider than the window or off it entirely: the trace stays inside the
    matrix, and a band that holds the best score gives the full kernel's score."""
    s, qs, qe, rs, re_, ops, lens = sw_traceback_band(q, r, *SC, lo, lo + width)
    assert 0 <= qs <= qe <= q.shape[0] and 0 <= rs <= re_ <= r.shape[0]
    assert int(lens[ops != 2].sum()) == qe - qs and int(lens[ops != 1].sum()) == re_ - rs
    full = sw_score(q, r, *SC)[0]
    assert s <= full
    if lo <= -q.shape[0] and lo + width >= r.shape[0]:
        assert s == full


def test_fastq_kernel_on_odd_records():
    """Records of one base, empty-looking names, N and lower case, CRLF, no final newline."""
    text = (b"@a\nA\n+\nI\n@b x\nNNNN\n+\nIIII\n@c\r\nacgtn\r\n+\r\nIIIII\r\n"
            + b"@long\n" + b"ACGT" * 500 + b"\n+\n" + b"I" * 2000 + b"\n@last\nGG\n+\nII")
    shard = encode_chunk(np.frombuffer(text, dtype=np.uint8), "odd.fq", 1)
    assert shard.n_reads == 5 and shard.lengths.tolist() == [1, 4, 5, 2000, 2]


def index_entries(index: ReferenceIndex) -> list[tuple[int, int]]:
    table = index.table.astype(np.int64)
    return [((b << index.shift) | int(index.rest[i]), int(index.positions[i]))
            for b in range(table.shape[0] - 1) for i in range(table[b], table[b + 1])]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lengths=st.lists(st.integers(1, 300), min_size=1, max_size=4), k=st.integers(3, 17), w=st.integers(1, 12),
       n_runs=st.integers(0, 4), repetitive=st.booleans(), seed=st.integers(0, 2**16))
def test_index_build_equals_the_numpy_minimizers(lengths, k, w, n_runs, repetitive, seed):
    """The counting-sort index over the packed genome holds exactly the numpy statement's
    canonical minimizers (key: canonical k-mer and orientation), sorted, for contigs shorter
    than k or w, N runs, one-letter contigs and palindromes (even k)."""
    local = np.random.default_rng(seed)
    contigs = []
    for n in lengths:
        codes = np.full(n, local.integers(0, 4), np.uint8) if repetitive else local.integers(0, 4, n).astype(np.uint8)
        for _ in range(n_runs):
            at = int(local.integers(0, n))
            codes[at : at + int(local.integers(1, 20))] = CODE_N
        contigs.append(codes)
    index = ReferenceIndex.build([f"c{i}" for i in range(len(contigs))], contigs, k, w)
    expected, base = [], 0
    for codes in contigs:
        keys, canonical, valid = canonical_keys(codes, k)
        expected += [(int(keys[p]), base + int(p)) for p in np.nonzero(minimizer_mask(canonical, valid, w))[0]]
        base += codes.shape[0]
    assert index_entries(index) == sorted(expected)
    small = build_index(index.genome, k, w, batch=int(local.integers(1, 8)))  # many batches of a few
    assert [a.tolist() for a in (small.table, small.rest, small.positions)] == \
        [a.tolist() for a in (index.table, index.rest, index.positions)]
    for threads in (1, 3):  # each thread a run of contigs, its own counters and its share of the sort
        other = build_index(index.genome, k, w, batch=int(local.integers(1, 8)), threads=threads)
        assert [a.tolist() for a in (other.table, other.rest, other.positions)] == \
            [a.tolist() for a in (index.table, index.rest, index.positions)] and other.occ_limit == index.occ_limit
    assert index.genome.codes(0, base).tobytes() == np.concatenate(contigs).tobytes()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 400), k=st.integers(3, 21), w=st.integers(1, 16), n_runs=st.integers(0, 3),
       alphabet=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_read_minimizers_equal_the_numpy_minimizers(n, k, w, n_runs, alphabet, seed):
    """The read kernel's minimizers (the window minimum carried from window to window) are the
    numpy statement's: same keys, positions and orientations, for reads shorter than k or w,
    N runs, few-letter reads (many equal hashes: the first smallest wins) and palindromes."""
    from hpc.kernels.seed import HASH_MUL, NO_HASH, _minimizers

    local = np.random.default_rng(seed)
    codes = local.integers(0, alphabet, n).astype(np.uint8)
    for _ in range(n_runs):
        at = int(local.integers(0, max(n, 1)))
        codes[at : at + int(local.integers(1, 12))] = CODE_N
    keys, canonical, valid = canonical_keys(codes, k)
    if keys.shape[0] > w:
        at = np.nonzero(minimizer_mask(canonical, valid, w))[0]
    else:  # a read of no more than w k-mers is one window (the index keeps each of a contig's)
        hashes = canonical * HASH_MUL
        hashes = np.where(valid, hashes ^ (hashes >> np.uint64(29)), NO_HASH)
        at = np.array([np.argmin(hashes)] if valid.any() else [], dtype=np.int64)
    size = max(n, 1)
    out = [np.empty(size, np.uint64), np.empty(size, np.uint64), np.empty(size, np.uint64), np.empty(size, np.int64),
           np.empty(size, np.uint8)]
    nm = _minimizers(codes, k, w, *out)
    assert out[3][:nm].tolist() == at.tolist()
    assert out[2][:nm].tolist() == (keys[at] & ~np.uint64(1)).tolist()
    assert out[4][:nm].tolist() == (keys[at] & np.uint64(1)).tolist()


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 200), n_runs=st.integers(0, 4), seed=st.integers(0, 2**16), data=st.data())
def test_any_range_of_the_packed_genome_unpacks_to_its_codes(n, n_runs, seed, data):
    """unpack_range (four bases a byte, N under the mask) at every alignment of start and end."""
    from hpc.codec import pack_codes
    from hpc.kernels.packed import unpack_range

    local = np.random.default_rng(seed)
    codes = local.integers(0, 4, n).astype(np.uint8)
    for _ in range(n_runs):
        at = int(local.integers(0, n))
        codes[at : at + int(local.integers(1, 10))] = CODE_N
    packed, nmask = pack_codes(codes)
    start = data.draw(st.integers(0, n - 1))
    end = data.draw(st.integers(start, n))
    out = np.full(end - start, 9, dtype=np.uint8)
    unpack_range(packed, nmask, start, out)
    assert out.tolist() == codes[start:end].tolist()


@pytest.mark.parametrize("copies", [10, 40])
def test_repeat_copies_are_kept_in_order_of_votes_then_place(copies):
    """A read from a segment repeated ``copies`` times: every copy is a candidate, in reference
    order (equal votes keep the order found), whether the few clusters are ordered by
    insertion or the many (over 32) by a sort."""
    segment = random_codes(150)
    parts = []
    for _ in range(copies):
        parts += [random_codes(300), segment]
    genome = np.concatenate(parts + [random_codes(300)])
    index = ReferenceIndex.build(["chr1"], [genome], 15, 5)
    shard = encode_sequences(["r"], [to_bytes(segment)])
    cands = find_candidates(index, shard, max_candidates=3, tie_extra=copies)
    starts = [300 + i * 450 for i in range(copies)]
    assert len(cands) == copies and cands.strand.tolist() == [0] * copies
    assert all(lo <= s and s + 150 <= hi for lo, hi, s in zip(cands.start.tolist(), cands.end.tolist(), starts))
    assert cands.start.tolist() == sorted(cands.start.tolist())


@pytest.mark.skipif(os.environ.get("NUMBA_BOUNDSCHECK") == "1", reason="this is the bounds-checked run")
def test_the_same_tests_with_bounds_checking_on(tmp_path):
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    here = Path(__file__).parent  # with the text kernels' tests (SAM/PAF lines, dwgsim names) and those of the
    # pairing, the seeding, the tandem check and a rank's blocks of candidates
    names = ("records", "paf", "pairing", "seeding", "tandem", "windows")
    files = [str(Path(__file__)), *(str(here / f"test_{name}.py") for name in names)]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
                          env=env, capture_output=True, text=True, timeout=900)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\d+ passed, 1 skipped", last), last
