"""The packed genome and minimizer index cached on the staging folder by checksum."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from hpc.genome import open_genome
from tasks.genomics.encoding import to_codes
from tasks.genomics.index_build import build_threads
from tasks.genomics.index_layout import build_buffer_bytes, estimate_index_bytes
from tasks.genomics.seeding import ReferenceIndex
from tasks.genomics.simulation import fasta_text, simulate_reference
from tasks.storage.index_cache import IndexMemoryError, build_cached_index, load_index, open_index

SHA = "ab" * 32


@pytest.fixture()
def fasta(tmp_path):
    ref = simulate_reference(3, 5000, seed=3)
    path = tmp_path / "ref.fa"
    path.write_text(fasta_text(ref))
    return path, ref


def test_the_cached_index_is_the_in_memory_index(tmp_path, fasta):
    path, ref = fasta
    files = build_cached_index(str(path), str(path), str(tmp_path), SHA, 15, 5)
    assert load_index(tmp_path, SHA, 15, 5) == (files, "verified")
    index = open_index(files)
    expected = ReferenceIndex.build([n for n, _ in ref], [to_codes(s) for _, s in ref], 15, 5)
    assert index.names == [n for n, _ in ref] and (index.k, index.w) == (15, 5)
    for field in ("table", "rest", "positions"):
        assert isinstance(getattr(index, field), np.memmap)
        assert np.array_equal(getattr(index, field), getattr(expected, field))
    assert index.occ_limit == expected.occ_limit
    assert index.window_codes(1, 10, 40).tobytes() == to_codes(ref[1][1][10:40]).tobytes()
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_build_says_where_it_stands_until_it_ends(tmp_path, fasta, monkeypatch):
    """While the index is built, a progress file beside the genome says the step (sketching by
    the share of bases, placing again by bases, then sorting and the checksums), k, w and the
    genome's bases; each new step is written at once, and the file is gone after the build."""
    import tasks.storage.index_cache as index_cache
    from tasks.storage.index_progress import build_progress, build_step_line

    path, _ = fasta
    seen = []
    real_build = index_cache.build_index

    def spy(*args, progress, **kwargs):
        def both(step, fraction=0.0):
            progress(step, fraction)
            seen.append(build_progress(tmp_path, SHA))
        return real_build(*args, progress=both, **kwargs)

    monkeypatch.setattr(index_cache, "build_index", spy)
    files = build_cached_index(str(path), str(path), str(tmp_path), SHA, 15, 5)
    steps = [s["step"] for s in seen]
    assert steps[0] == "sketching" and steps[-1] == "sorting" and "placing" in steps
    assert steps == sorted(steps, key=["sketching", "placing", "sorting"].index)
    assert all({"k": 15, "w": 5, "bases": 15_000}.items() <= s.items() for s in seen)
    assert build_progress(tmp_path, SHA) is None and load_index(tmp_path, SHA, 15, 5) == (files, "verified")
    assert build_step_line({"step": "sketching", "fraction": 0.5, "k": 21, "w": 11, "bases": 3_100_000_000}) == \
        ("sketching 50% of 3,100,000,000 bases (k=21, w=11)", 41.0)
    assert build_step_line({"step": "placing", "fraction": 0.25, "k": 21, "w": 11, "bases": 10}) == \
        ("placing 25% of 10 bases (k=21, w=11)", 65.0)
    assert build_step_line({"step": "packing", "fraction": 0.0}) == ("packing", 0.0)


def test_k_and_w_not_given_are_chosen_by_the_reference_size(tmp_path, fasta, monkeypatch):
    """k=15, w=5 for a reference under LARGE_GENOME bases, minimap2's short-read preset (21, 11)
    from it; a k or w given is kept; the choice waits for the packed genome's size."""
    import tasks.genomics.seeding as seeding
    from tasks.storage.index_cache import resolve_seeding

    assert seeding.default_seeding(seeding.LARGE_GENOME - 1) == (15, 5)
    assert seeding.default_seeding(seeding.LARGE_GENOME) == (21, 11)
    assert seeding.default_seeding(10**10, k=17) == (17, 11)
    path, _ = fasta
    assert resolve_seeding(tmp_path, SHA, None, None) is None  # not packed yet: chosen by the build
    assert resolve_seeding(tmp_path, SHA, 19, 7) == (19, 7)
    files = build_cached_index(str(path), str(path), str(tmp_path), SHA, None, None)
    assert files.seeding == (15, 5) and Path(files.index).name == "k15-w5"
    assert resolve_seeding(tmp_path, SHA, None, None) == (15, 5)  # from the cached genome's size
    monkeypatch.setattr(seeding, "LARGE_GENOME", 15_000)  # the three contigs of 5,000 bases are "large" now
    files = build_cached_index(str(path), str(path), str(tmp_path), SHA, None, 3)
    assert files.seeding == (21, 3) and open_index(files).k == 21 and Path(files.index).name == "k21-w3"


def test_other_reference_or_settings_miss(tmp_path, fasta):
    path, _ = fasta
    build_cached_index(str(path), str(path), str(tmp_path), SHA, 15, 5)
    assert load_index(tmp_path, "cd" * 32, 15, 5)[0] is None
    assert load_index(tmp_path, SHA, 15, 10)[0] is None
    assert load_index(tmp_path / "elsewhere", SHA, 15, 5)[0] is None


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove", "json"])
@pytest.mark.parametrize("target", ["genome/packed.bin", "k15-w5/rest.bin", "k15-w5/table.bin"])
def test_a_damaged_or_truncated_index_is_found_and_rebuilt(tmp_path, fasta, damage, target):
    path, _ = fasta
    files = build_cached_index(str(path), str(path), str(tmp_path), SHA, 15, 5)
    before = open_index(files)
    rest, positions = np.array(before.rest), np.array(before.positions)
    victim = tmp_path / "index" / SHA[:16] / target
    if damage == "flip":
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    elif damage == "truncate":
        os.truncate(victim, victim.stat().st_size // 2)
    elif damage == "remove":
        victim.unlink()
    else:
        victim = victim.parent / ("genome.json" if "genome" in target else "index.json")
        victim.write_text("{not json")
    found, why = load_index(tmp_path, SHA, 15, 5)
    assert found is None and why
    again = open_index(build_cached_index(str(path), str(path), str(tmp_path), SHA, 15, 5))
    assert np.array_equal(again.rest, rest) and np.array_equal(again.positions, positions)
    assert load_index(tmp_path, SHA, 15, 5)[1] == "verified"


def test_a_reference_over_the_memory_budget_is_refused_before_the_build(tmp_path, fasta):
    path, _ = fasta
    need = estimate_index_bytes(15_000, 3, 15, 5) + build_buffer_bytes(15_000, 3, 15, 5, build_threads())
    with pytest.raises(IndexMemoryError) as err:
        build_cached_index(str(path), str(path), str(tmp_path), SHA, 15, 5, budget=need // 2)
    message = str(err.value)
    assert f"reference {path}" in message and "15000 bases in 3 contigs" in message
    assert f"{need / 2**30:.1f} GiB" in message and "--index-memory-gb" in message
    assert not (tmp_path / "index" / SHA[:16] / "k15-w5").exists()  # nothing built
    assert open_genome(tmp_path / "index" / SHA[:16] / "genome").total == 15_000  # the packing is kept


def test_the_estimate_is_close_to_what_is_written(tmp_path, fasta):
    path, _ = fasta
    files = build_cached_index(str(path), str(path), str(tmp_path), SHA, 15, 5)
    written = sum(p.stat().st_size for d in (files.genome, files.index) for p in Path(d).glob("*.bin"))
    assert 0.7 < estimate_index_bytes(15_000, 3, 15, 5) / written < 1.5
    assert json.loads((tmp_path / "index" / SHA[:16] / "k15-w5" / "index.json").read_text())["minimizers"] > 0


def test_seeding_a_staged_shard_reads_its_bases_only(tmp_path, fasta, monkeypatch):
    """A Ray worker seeds a staged shard from its bases: its names and qualities (about 12 MB of
    a 100k-read shard) are not read, and its windows are those of the whole shard."""
    import tasks.storage.shards as shards
    from hpc.codec import BASE_MEMBERS
    from hpc.files import save_npz_atomic
    from hpc.manifest import file_entry
    from tasks.genomics.encoding import encode_sequences
    from tasks.genomics.seeding import find_candidates
    from tasks.genomics.simulation import simulate_reads

    path, ref = fasta
    files = build_cached_index(str(path), str(path), str(tmp_path), SHA, 15, 5)
    reads = simulate_reads(ref, 60, 150, 0.006, 0.0005, seed=5)
    shard = encode_sequences([r.name for r in reads], [r.seq for r in reads], [b"5" * len(r.seq) for r in reads])
    npz = tmp_path / "reads" / "shard_00000.npz"
    npz.parent.mkdir()
    entry = file_entry(tmp_path, npz, save_npz_atomic(npz, **shard.to_arrays()), shard=0, reads=shard.n_reads)
    loaded: list[set[str]] = []
    real = shards.load_npz_verified

    def recording(root, entry, keys=None):
        arrays = real(root, entry, keys)
        loaded.append(set(arrays))
        return arrays

    monkeypatch.setattr(shards, "load_npz_verified", recording)
    record = shards.seed_shard_file(entry, files, str(tmp_path), 3)
    assert loaded == [set(BASE_MEMBERS)]
    expected = find_candidates(open_index(files), shard, max_candidates=3).to_arrays()
    with np.load(tmp_path / record["path"]) as got:
        assert set(got.files) == set(expected)
        assert all(np.array_equal(got[k], expected[k]) for k in expected)
    assert record["windows"] == expected["read"].shape[0] > 0
