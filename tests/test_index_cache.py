"""The reference index cache on the staging folder."""

import json

import numpy as np

from tasks.genomics.encoding import to_codes
from tasks.genomics.seeding import ReferenceIndex
from tasks.genomics.simulation import simulate_reference
from tasks.storage.index_cache import cache_paths, load_index, save_index

SHA = "ab" * 32


def build():
    ref = simulate_reference(2, 5000, seed=3)
    return ReferenceIndex.build([n for n, _ in ref], [to_codes(s) for _, s in ref], 15, 5)


def test_round_trip(tmp_path):
    index = build()
    path = save_index(tmp_path, SHA, index)
    assert path == cache_paths(tmp_path, SHA, 15, 5)[0] and path.parent == tmp_path / "index"
    back = load_index(tmp_path, SHA, 15, 5)
    assert back.names == index.names and (back.k, back.w) == (15, 5)
    for field in ("lengths", "starts", "codes", "kmers", "positions"):
        assert np.array_equal(getattr(back, field), getattr(index, field))
    assert not list((tmp_path / "index").glob("*.tmp"))


def test_other_reference_or_settings_miss(tmp_path):
    save_index(tmp_path, SHA, build())
    assert load_index(tmp_path, "cd" * 32, 15, 5) is None
    assert load_index(tmp_path, SHA, 15, 10) is None
    assert load_index(tmp_path / "elsewhere", SHA, 15, 5) is None


def test_damaged_or_half_written_cache_is_not_used(tmp_path):
    path = save_index(tmp_path, SHA, build())
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert load_index(tmp_path, SHA, 15, 5) is None  # sha256 disagrees: rebuilt by the caller
    meta = cache_paths(tmp_path, SHA, 15, 5)[1]
    meta.write_text("{not json")
    assert load_index(tmp_path, SHA, 15, 5) is None
    path.unlink()
    meta.write_text(json.dumps({"version": 1}))
    assert load_index(tmp_path, SHA, 15, 5) is None
