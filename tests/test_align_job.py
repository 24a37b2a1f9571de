"""The MPI job for real: mpiexec ranks from the mpich wheel, through the local backend."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hpc.align_job import job_command
from hpc.rank_output import load_rank_output
from hpc.codec import BASE_MEMBERS
from hpc.split import share_of, split_by_cells
from hpc.backend import JobSpec, JobState, LocalBackend, tail, wait_for
from hpc.files import sha256_file
from hpc.launchers import MpiexecLauncher, killing_signal
from hpc.manifest import ManifestError, RunSettings, StagedRun
from hpc.run_folder import AlignOutputs, job_marker, rank_marker, rank_output
from tasks.collect import ReconciliationError, SampleOutputs, check_every_read_once, write_results
from tasks.genomics.encoding import encode_sequences, to_codes
from tasks.genomics.seeding import ReferenceIndex, find_candidates
from tasks.genomics.simulation import simulate_reads, simulate_reference
from tasks.stage import write_staging


def test_split_by_cells_balances_work():
    cells = np.array([10, 10, 10, 10, 100, 10, 10, 10, 10, 10])
    parts = split_by_cells(cells, 2)
    assert parts[0][0] == 0 and parts[-1][1] == 10 and parts[0][1] == parts[1][0]
    sums = [cells[a:b].sum() for a, b in parts]
    assert abs(sums[0] - sums[1]) <= 100
    assert split_by_cells(np.zeros(0, np.int64), 3) == [(0, 0)] * 3
    assert [b - a for a, b in split_by_cells(np.ones(9), 3)] == [3, 3, 3]


def whole_run_split(cells: np.ndarray, ranks: int, step: int) -> list[tuple[int, int]]:
    """The split as first written, over one array of the whole run's cells per read."""
    total = np.cumsum(cells, dtype=np.int64)
    grand = int(total[-1]) if total.size else 0
    cuts = [0]
    for r in range(1, ranks):
        cut = int(np.searchsorted(total, grand * r / ranks, side="left")) + 1 if grand else 0
        cuts.append(cut - cut % step)
    cuts = np.maximum.accumulate(np.minimum([*cuts, len(cells)], len(cells)))
    return [(int(cuts[r]), int(cuts[r + 1])) for r in range(ranks)]


@pytest.mark.parametrize("seed", range(6))
def test_a_share_from_shard_totals_is_the_whole_run_split(seed):
    """A rank finds its reads from each shard's total and the cells of at most two shards,
    never an array over the whole run; the ranges are those of the whole-run split (empty
    shards, shards of no cells and pairs included)."""
    rng = np.random.default_rng(seed)
    sizes = [int(n) * 2 for n in rng.integers(0, 40, size=int(rng.integers(1, 9)))]
    parts = [rng.integers(0, 3000, size=n) * (rng.random(n) < 0.8) for n in sizes]
    whole = np.concatenate(parts)
    asked: list[int] = []

    def cells_of(s: int) -> np.ndarray:
        asked.append(s)
        return parts[s]

    for ranks in (1, 2, 3, 7):
        for step in (1, 2):
            expected = whole_run_split(whole, ranks, step)
            for rank in range(ranks):
                asked.clear()
                got = share_of([int(p.sum()) for p in parts], sizes, cells_of, ranks, rank, step)
                assert got == expected[rank], (ranks, step, rank)
                assert len(asked) <= 2
            assert split_by_cells(whole, ranks, step) == expected


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    root = tmp_path_factory.mktemp("fsx") / "run-test"
    reference = simulate_reference(2, 20_000, seed=21)
    reads = simulate_reads(reference, 300, 150, 0.006, 0.0005, seed=22)
    index = ReferenceIndex.build([n for n, _ in reference], [to_codes(s) for _, s in reference], 15)
    shards = [encode_sequences([r.name for r in part], [r.seq for r in part]) for part in (reads[:170], reads[170:])]
    cands = [find_candidates(index, s) for s in shards]
    manifest, _ = write_staging(root, {}, index, shards, cands, RunSettings())
    return manifest, reads


def test_a_rank_reads_the_candidates_of_its_own_shards_once(tmp_path, monkeypatch):
    """The manifest carries each shard's DP cells (counted by the seed task), so a rank reads
    the candidates of its own shards and of the (at most two) shards where its cuts fall, each
    once, not every shard's, however many the run has;
    a manifest without them (shards seeded before they were counted) gives the same split."""
    import hpc.align_job as align_job

    reference = simulate_reference(1, 20_000, seed=31)
    reads = simulate_reads(reference, 240, 150, 0.006, 0.0005, seed=32)
    index = ReferenceIndex.build([n for n, _ in reference], [to_codes(s) for _, s in reference], 15)
    parts = [reads[i:i + 40] for i in range(0, 240, 40)]
    shards = [encode_sequences([r.name for r in part], [r.seq for r in part]) for part in parts]
    cands = [find_candidates(index, s) for s in shards]
    manifest, entries = write_staging(tmp_path / "run", {}, index, shards, cands, RunSettings())
    assert [e["candidates"]["cells"] for e in entries] == [c.cells for c in cands]
    loads: list[str] = []
    read_members: set[str] = set()
    real = align_job.load_npz_verified

    def counting(root, entry, keys=None):
        loads.append(entry["path"])
        arrays = real(root, entry, keys)
        if entry["path"].startswith("reads/"):
            read_members.update(arrays)
        return arrays

    monkeypatch.setattr(align_job, "load_npz_verified", counting)

    def shares(path):
        out = []
        for rank in range(3):
            loads.clear()
            parts, counters = align_job.align_rank(path, rank, 3)
            lo, hi = counters["reads"]
            own = {f"candidates/shard_{s:05d}.npz" for s in range(6) if s * 40 < hi and (s + 1) * 40 > lo}
            cand_loads = [x for x in loads if x.startswith("candidates/")]
            out.append(((lo, hi), sorted(cand_loads), sorted(own)))
        return out

    with_cells = shares(manifest)
    assert with_cells[0][0][0] == 0 and with_cells[-1][0][1] == 240
    # a read shard's bases only: its names and qualities are collect's, not read into a rank
    assert read_members == {"packed", "nmask", "lengths", "offsets", "mates"} == set(BASE_MEMBERS)
    for (lo, hi), cand_loads, own in with_cells:  # its own shards and where its cuts fall, each once
        assert len(set(cand_loads)) == len(cand_loads) and set(own) <= set(cand_loads)
        assert len(set(cand_loads) - set(own)) <= 2
    body = json.loads(manifest.read_text())
    for e in body["shards"]:
        del e["candidates"]["cells"]
    older = tmp_path / "run" / "older.json"
    older.write_text(json.dumps(body))
    assert [r for r, _, _ in shares(older)] == [r for r, _, _ in with_cells]


def run_job(manifest, out_dir, ranks, env=None, kernel="cpu", staged=None):
    command = MpiexecLauncher(ranks).wrap(job_command(manifest, out_dir, kernel, staged=staged))
    spec = JobSpec("test-align", command, manifest.parent, out_dir / "job.out", out_dir / "job.err", env or {})
    backend = LocalBackend()
    return wait_for(backend, backend.submit(spec), timeout=240), spec


def test_two_ranks_align_every_read_and_write_markers(staged, tmp_path):
    manifest, reads = staged
    state, spec = run_job(manifest, tmp_path / "out with 'quote'", 2)
    assert state is JobState.COMPLETED, tail(spec.stderr)
    out = tmp_path / "out with 'quote'"
    markers = [json.loads(rank_marker(out, r).read_text()) for r in range(2)]
    assert [m["exit_status"] for m in markers] == [0, 0]
    assert markers[0]["reads"][1] == markers[1]["reads"][0]  # contiguous, no overlap
    assert all(m["cells"] > 0 for m in markers)
    cols = [load_rank_output(rank_output(out, r)) for r in range(2)]
    primary = np.concatenate([c["primary"] for c in cols]).astype(bool)
    scores = np.concatenate([c["score"] for c in cols])
    assert primary.sum() == len(reads)  # one primary per read; no repeats in this reference
    assert (scores[primary] >= 200).all()  # 150 bp at <1% error
    assert job_marker(out, "0").is_file()


def test_failing_rank_fails_the_job_with_its_error(staged, tmp_path):
    manifest, _ = staged
    state, spec = run_job(manifest, tmp_path, 2, env={"HELIXFLOW_FAIL_RANK": "1"})
    assert state is JobState.FAILED
    marker = json.loads(rank_marker(tmp_path, 1).read_text())
    assert marker["exit_status"] == 1 and "failure injected" in marker["error"]
    last = marker["traceback"].strip().splitlines()  # kept whatever MPI_Abort does to the rank's stderr
    assert last[0] == "Traceback (most recent call last):" and last[-1].endswith("failure injected by HELIXFLOW_FAIL_RANK")
    assert not job_marker(tmp_path, "0").exists()


def test_a_rank_killed_by_a_signal_is_named_by_it(staged, tmp_path):
    manifest, _ = staged
    state, spec = run_job(manifest, tmp_path, 2, env={"HELIXFLOW_KILL_RANK": "1"})
    assert state is JobState.FAILED
    assert not rank_marker(tmp_path, 1).exists()  # it had no chance to write one
    assert killing_signal(tail(spec.stdout) + tail(spec.stderr)) == "SIGKILL (signal 9)"


def test_tampered_shard_is_refused(staged, tmp_path):
    manifest, _ = staged
    copy = tmp_path / "run"
    shutil.copytree(manifest.parent, copy)
    shard = copy / "reads" / "shard_00001.npz"
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF
    shard.write_bytes(bytes(data))
    state, _ = run_job(copy / "manifest.json", tmp_path / "out", 1)
    assert state is JobState.FAILED
    error = json.loads(rank_marker(tmp_path / "out", 0).read_text())["error"]
    assert "shard_00001.npz" in error and "sha256" in error


def test_scalar_and_vectorized_kernels_give_identical_rows(staged, tmp_path):
    manifest, _ = staged
    outputs = []
    for kernel in ("scalar", "cpu"):
        state, spec = run_job(manifest, tmp_path / kernel, 2, kernel=kernel)
        assert state is JobState.COMPLETED, tail(spec.stderr)
        outputs.append([load_rank_output(rank_output(tmp_path / kernel, r)) for r in range(2)])
    for a, b in zip(*outputs):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def without_last_shard(manifest, folder):
    """A copy of the run folder whose manifest no longer lists its last shard (the files stay)."""
    shutil.copytree(manifest.parent, folder)
    body = json.loads((folder / "manifest.json").read_text())
    body["shards"].pop()
    (folder / "manifest.json").write_text(json.dumps(body, indent=2))
    return folder / "manifest.json"


def test_a_manifest_edited_after_staging_fails_every_rank(staged, tmp_path):
    """The silent-loss case: one shard entry removed between stage and align. The job used to
    align the 170 reads left and report them as all there is."""
    manifest, reads = staged
    as_staged = StagedRun(manifest, sha256_file(manifest), len(reads))
    edited = without_last_shard(manifest, tmp_path / "run")
    state, _ = run_job(edited, tmp_path / "out", 2, staged=as_staged)
    assert state is JobState.FAILED
    # Each rank checks on its own; the first to fail aborts the job, which may stop the other
    # before it writes its marker, so every marker written must carry the error, and one must be.
    markers = [json.loads(p.read_text()) for r in range(2) if (p := rank_marker(tmp_path / "out", r)).is_file()]
    assert markers, "no rank wrote a marker"
    for marker in markers:
        assert marker["error"].startswith(f"ManifestError: {edited}: changed after staging"), marker
    with pytest.raises(ManifestError, match=r"lists 170 reads in 1 shards, but 300 were encoded"):
        StagedRun(edited, sha256_file(edited), len(reads)).verify()


def test_collect_accounts_for_every_read_once(staged, tmp_path):
    manifest, reads = staged
    state, spec = run_job(manifest, tmp_path / "out", 2)
    assert state is JobState.COMPLETED, tail(spec.stderr)
    as_staged = StagedRun(manifest, sha256_file(manifest), len(reads))
    outputs = AlignOutputs(tmp_path / "out", "0", 2)
    paf_only = SampleOutputs("s1", bam=False)
    summary = write_results(manifest, outputs, str(tmp_path / "results"), staged=as_staged, spec=paf_only)
    assert summary["reads"] == summary["mapped"] + summary["unmapped"] == len(reads)
    with pytest.raises(ManifestError, match="but 301 were encoded"):
        write_results(manifest, outputs, str(tmp_path / "results2"), staged=StagedRun(manifest, as_staged.sha256,
                                                                                       len(reads) + 1), spec=paf_only)
    assert not (tmp_path / "results2").exists()
    with pytest.raises(FileNotFoundError, match="rank_0000-other.npz"):  # another attempt's outputs are never read
        write_results(manifest, AlignOutputs(tmp_path / "out", "other", 2), str(tmp_path / "results3"), spec=paf_only)
    # These shards were encoded without qualities: a BAM is refused, and nothing is left half-written.
    with pytest.raises(ValueError, match="shard 0 holds no base qualities"):
        write_results(manifest, outputs, str(tmp_path / "results4"), staged=as_staged, spec=SampleOutputs("s1"))
    assert not [p for p in (tmp_path / "results4").rglob("*") if p.is_file()]


def test_a_read_with_two_primaries_or_an_unknown_read_is_refused():
    cols = {"shard": np.array([0, 0, 1]), "read": np.array([0, 0, 2]), "primary": np.array([1, 1, 1])}
    with pytest.raises(ReconciliationError, match="read 0 of shard 0 has 2 primary alignments"):
        check_every_read_once(cols, [2, 3], Path("align"))
    cols = {"shard": np.array([1, 1, 1]), "read": np.array([1, 2, 2]), "primary": np.array([1, 1, 1])}
    with pytest.raises(ReconciliationError, match="read 2 of shard 1 has 2 primary alignments"):
        check_every_read_once(cols, [2, 3], Path("align"))  # counted from the rows' lowest read, not the run's first
    cols = {"shard": np.array([0, 1]), "read": np.array([1, 3]), "primary": np.array([1, 1])}
    with pytest.raises(ReconciliationError, match="names read 3 of shard 1, which the manifest does not list"):
        check_every_read_once(cols, [2, 3], Path("align"))
    check_every_read_once({"shard": np.array([0, 0]), "read": np.array([1, 1]), "primary": np.array([1, 0])}, [2], Path("align"))


def test_between_shards_a_rank_holds_nothing_of_a_shard_but_its_rows(staged):
    """A shard's working arrays (windows, scores, traceback runs) go before the rank hands its
    rows over, so they do not stand beside the next shard's: a rank's peak is one shard's."""
    import tracemalloc

    from hpc.align_job import rank_parts

    manifest, _ = staged
    parts = rank_parts(manifest, 0, 1)
    next(parts)  # the first shard (and the kernels' first calls) before counting
    tracemalloc.start()
    try:
        _, rows = next(parts)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    handed = sum(v.nbytes for v in rows.values())
    assert held - handed < 0.2 * peak, (held, handed, peak)


def primaries(tmp_path, reference, names, reads):
    """One rank (k=15, w=5) over ``reads`` on ``reference`` ((name, sequence) pairs): the
    candidates, the rank's columns, and each read's primary MAPQ and start."""
    from hpc.align_job import align_rank

    index = ReferenceIndex.build([n for n, _ in reference], [to_codes(s) for _, s in reference], 15, 5)
    shard = encode_sequences(names, reads)
    cands = find_candidates(index, shard)
    manifest, _ = write_staging(tmp_path / "run", {}, index, [shard], [cands], RunSettings())
    ((_, cols),), _ = align_rank(manifest, 0, 1)
    first = cols["primary"] == 1
    read = cols["read"][first].tolist()
    return (cands, cols, dict(zip(read, cols["mapq"][first].tolist())),
            dict(zip(read, (cols["wstart"][first] + cols["r_start"][first]).tolist())))


def test_a_hit_few_seeds_found_is_not_placed_at_mapq_60(tmp_path):
    """A read whose last 110 bases are a two-colour poly-G tail aligns by its first 40: few
    seeds find that hit, so seeding found no runner-up either, and its MAPQ is scaled down
    (minimap2's min(1, anchors / 10)); the whole read beside it keeps 60."""
    reference = simulate_reference(1, 50_000, seed=41)
    seq = reference[0][1]
    names, reads = ["whole", "tailed"], [seq[10_000:10_150], seq[30_000:30_040] + b"G" * 110]
    cands, cols, mapq, _ = primaries(tmp_path, reference, names, reads)
    first = cols["primary"] == 1
    votes = {int(r): int(v) for r, v in zip(cands.read, cands.votes)}
    assert mapq[0] == 60 and votes[0] * 3 >= 60  # k=15, w=5 (RunSettings'): a seed hit about every 3 bases
    assert cols["wstart"][first][1] + cols["r_start"][first][1] == 30_000  # placed right, on 40 bases
    assert cols["n_candidates"][first].tolist() == [1, 1]  # so each read's votes are its primary's
    assert votes[1] * 3 < 60 and mapq[1] == 60 * (votes[1] * 6) // 120 < 60


def test_a_read_inside_a_tandem_array_is_not_placed_at_mapq_60(tmp_path):
    """A 600-bp exact tandem array (a 4-bp unit): a read inside it has one window holding the
    whole array, one alignment, and any shift by whole units aligns as well: its window's
    other diagonals are its rivals, and its MAPQ is 0. A read across the array's edge is
    anchored by the unique flank and keeps 60."""
    rng = np.random.default_rng(43)
    acgt = np.frombuffer(b"ACGT", np.uint8)
    left, right = (acgt[rng.integers(0, 4, 20_000)].tobytes() for _ in range(2))
    seq = left + acgt[rng.integers(0, 4, 4)].tobytes() * 150 + right
    names, reads = ["inside", "edge"], [seq[20_200:20_350], seq[19_870:20_020]]  # the edge read: 130 bp of flank
    _, _, mapq, start = primaries(tmp_path, [("chr1", seq)], names, reads)
    assert 20_000 <= start[0] <= 20_450 and mapq[0] == 0
    assert start[1] == 19_870 and mapq[1] == 60
