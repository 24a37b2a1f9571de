"""A gzip stream's chunks reach Ray workers on this machine through files in shared memory
(tasks/runtime/handoff.py): the same bytes, each file gone when its shard is done, nothing
left behind, and the object store again when a file cannot be written."""

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from tasks.genomics.chunks import Chunk
from tasks.runtime.handoff import PREFIX, Handoff, remove_stale


def _chunk(text: bytes) -> Chunk:
    return Chunk(first_line=9, offset=4096, length=len(text), data=np.frombuffer(text, dtype=np.uint8), done=0.5)


def test_a_handed_chunk_reads_back_the_same_bytes_and_its_file_goes_when_released(tmp_path):
    text = b"@r1\nACGT\n+\nIIII\n" * 1000
    with Handoff(tmp_path) as handoff:
        handed = handoff.hand(7, _chunk(text), mate=2)
        assert handed.data is None and handed.held is not None
        assert (handed.first_line, handed.offset, handed.length, handed.done) == (9, 4096, len(text), 0.5)
        # read as a worker does: from the file, not from the reads file given as the source
        assert bytes(handed.read("/nonexistent/reads.fq.gz")) == text
        assert bytes(handed.read("/nonexistent/reads.fq.gz", scratch="mate2")) == text
        [folder] = tmp_path.iterdir()
        assert folder.name.startswith(f"{PREFIX}{os.getpid()}-") and len(list(folder.iterdir())) == 1
        handoff.release(7)
        assert list(folder.iterdir()) == []
        handoff.hand(8, _chunk(text))
    assert list(tmp_path.iterdir()) == []  # the folder goes on exit, with what was not released


def test_plain_file_chunks_and_no_shared_memory_pass_unchanged(tmp_path):
    plain = Chunk(first_line=1, offset=0, length=10, data=None, done=1.0)
    with Handoff(tmp_path) as handoff:
        assert handoff.hand(0, plain) is plain
        assert list(tmp_path.iterdir()) == []  # no folder for a plain file's chunks
    chunk = _chunk(b"@r\nA\n+\nI\n")
    with Handoff(None) as handoff:
        assert handoff.hand(0, chunk) is chunk
    assert Handoff(tmp_path / "missing").hand(0, chunk) is chunk


def test_a_chunk_that_cannot_be_written_keeps_its_bytes(tmp_path, monkeypatch):
    import tasks.runtime.handoff as handoff_module

    text = b"@r\nACGT\n+\nIIII\n"
    with Handoff(tmp_path) as handoff:
        handoff.hand(0, _chunk(text))
        handoff.release(0)
        real_statvfs = os.statvfs
        with monkeypatch.context() as m:  # too little room left (a container's small /dev/shm)
            m.setattr(handoff_module.os, "statvfs", lambda p: type("R", (), {"f_bavail": 1, "f_frsize": 16})())
            kept = handoff.hand(1, _chunk(text))
        assert kept.held is None and bytes(kept.read("unused")) == text and os.statvfs is real_statvfs
        handoff.folder.rmdir()  # the write fails
        kept = handoff.hand(2, _chunk(text))
        assert kept.held is None and bytes(kept.read("unused")) == text
    assert list(tmp_path.iterdir()) == []


def test_a_killed_runs_folder_is_removed_by_the_next(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    stale = tmp_path / f"{PREFIX}{int(dead.stdout)}-abc"
    stale.mkdir()
    (stale / "0_1").write_bytes(b"x" * 100)
    mine = tmp_path / f"{PREFIX}{os.getpid()}-def"
    mine.mkdir()
    other = tmp_path / "someone-else"
    other.mkdir()
    assert remove_stale(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])


@pytest.mark.integration
def test_paired_gzip_reads_encode_through_shared_memory(prefect_harness, ray_cluster, tmp_path, monkeypatch):
    from prefect import flow

    import tasks.encode as encode
    from hpc.manifest import load_npz_verified
    from tasks.genomics.encoding import EncodedShard, to_bytes
    from tasks.genomics.simulation import simulate_reads, simulate_reference
    from tasks.ingest import ingest_reads
    from tasks.runtime.handoff import workers_here

    reads = simulate_reads(simulate_reference(1, 20_000, seed=5), 1200, 150, 0.006, 0.0, seed=6)
    r1, r2 = tmp_path / "r1.fq.gz", tmp_path / "r2.fq.gz"
    mates = [(r.seq, bytes(reversed(r.seq))) for r in reads]
    r1.write_bytes(gzip.compress(b"".join(b"@p%d/1\n%s\n+\n%s\n" % (i, a, b"I" * len(a))
                                          for i, (a, _) in enumerate(mates)), compresslevel=1))
    r2.write_bytes(gzip.compress(b"".join(b"@p%d/2\n%s\n+\n%s\n" % (i, b, b"5" * len(b))
                                          for i, (_, b) in enumerate(mates)), compresslevel=1))
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(encode, "SHARED_MEMORY", shm)
    handed = []
    real_hand = Handoff.hand

    def hand(self, shard_no, chunk, mate=1):
        out = real_hand(self, shard_no, chunk, mate)
        handed.append(out.held)
        return out

    monkeypatch.setattr(Handoff, "hand", hand)

    @flow
    def encode_pairs():
        assert workers_here()  # the test's local Ray
        one, two = ingest_reads(str(r1), str(tmp_path / "fsx")), ingest_reads(str(r2), str(tmp_path / "fsx"))
        return encode.encode_reads(one, str(tmp_path / "fsx" / "run"), 200, mate2=two)

    shards = encode_pairs()
    assert len(shards) == 12 and len(handed) == 24 and all(handed)  # every chunk went through a file
    assert list(shm.iterdir()) == []  # and none is left
    root = tmp_path / "fsx" / "run"
    staged = [EncodedShard.from_arrays(load_npz_verified(root, s)) for s in shards]
    want = b"".join(a + b for a, b in mates)
    assert b"".join(to_bytes(sh.codes()) for sh in staged) == want
    assert [n for sh in staged for n in sh.names] == [n for i in range(1200) for n in (f"p{i}", f"p{i}")]
    # a one-node cluster run by another user: its workers could not read the driver's folder
    import tasks.runtime.handoff as handoff_module

    uid = os.getuid()
    monkeypatch.setattr(handoff_module.os, "getuid", lambda: uid + 1)
    assert not workers_here()
