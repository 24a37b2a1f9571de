"""A gzip stream's FASTQ chunks, handed to Ray workers on this machine through files in shared
memory (``/dev/shm``) instead of Ray's object store.

The driver inflates a gzip stream and cuts it into chunks; each used to travel to its encode
task through the object store. Every page of the store that a process touched stayed in its
resident memory: about the whole store (256 MiB here) in the flow's process and in every Ray
worker, a little more the more chunks had passed (a worker's peak 574 MiB at 2M reads, 605 at
10M). A chunk written to a file in ``/dev/shm`` is memory that no process maps: the driver
writes it, the worker reads it into its own reusable buffer, and the file is removed when its
shard is done. Shared memory in use is then the chunks in flight (two a CPU), not the store.

Only where every worker runs on this machine (:func:`workers_here`); a cluster of several
nodes keeps the object store, which moves chunks between nodes. A file that cannot be written
(shared memory full) leaves its chunk to the object store as before. No Prefect here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from tasks.genomics.chunks import Chunk

SHARED_MEMORY = Path("/dev/shm")
PREFIX = "helixflow-chunks-"  # then the driver's pid: a killed run's folder is removed by the next


def workers_here() -> bool:
    """Whether every node of the connected Ray cluster is this process's node, run by this
    process's user (its workers can read the driver's private folder): a local Ray, or a
    one-node cluster joined on its own machine (never through Ray Client, whose driver is
    elsewhere). False where Ray's session folder cannot be found."""
    import ray

    with contextlib.suppress(AttributeError, ImportError):
        from ray.util.client import ray as client

        if client.is_connected():
            return False
    me = ray.get_runtime_context().get_node_id()
    if not all(node["NodeID"] == me for node in ray.nodes() if node.get("Alive")):
        return False
    try:
        from ray._private.worker import global_worker

        return os.stat(global_worker.node.get_session_dir_path()).st_uid == os.getuid()
    except (ImportError, AttributeError, OSError):
        return False


def remove_stale(base: Path) -> int:
    """Remove the handoff folders under ``base`` whose driver is no longer running (a run
    killed before it could clean up: tmpfs keeps them until a reboot). Returns how many."""
    removed = 0
    for folder in base.glob(f"{PREFIX}*"):
        try:
            pid = int(folder.name[len(PREFIX):].split("-", 1)[0])
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
        except PermissionError:  # another user's process: still running
            continue
    return removed


class Handoff:
    """Chunks of one encode task written to files under ``base`` (when given), each released
    when its shard is done; the folder is made at the first chunk with bytes and removed on
    exit, whatever happened."""

    def __init__(self, base: Path | None):
        self.base = base if base is not None and base.is_dir() and os.access(base, os.W_OK) else None
        self.folder: Path | None = None
        self.held: dict[int, list[Path]] = {}

    def __enter__(self) -> Handoff:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def hand(self, shard_no: int, chunk: Chunk, mate: int = 1) -> Chunk:
        """``chunk`` with its bytes moved to a file, or as it is: a plain file's chunk (no bytes
        to move), no shared memory, or a write that failed (full)."""
        if self.base is None or chunk.data is None:
            return chunk
        if self.folder is None:
            remove_stale(self.base)
            self.folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=self.base))
        path = self.folder / f"{shard_no}_{mate}"
        try:
            room = os.statvfs(self.folder)
            if room.f_bavail * room.f_frsize < 2 * chunk.data.nbytes:  # a small /dev/shm (a container's 64 MiB)
                return chunk
            with open(path, "wb") as fh:
                fh.write(memoryview(chunk.data))
        except OSError:
            path.unlink(missing_ok=True)
            return chunk
        self.held.setdefault(shard_no, []).append(path)
        return replace(chunk, data=None, held=str(path))

    def release(self, shard_no: int) -> None:
        for path in self.held.pop(shard_no, []):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
        self.held.clear()
