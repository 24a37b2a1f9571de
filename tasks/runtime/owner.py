"""One owner per run folder: the flow that runs on it holds an exclusive lock on it.

Two runs of the same inputs and settings share a run folder (that is how a rerun resumes); a
second one started while the first is working would re-encode over the first's shards and
delete its manifest. The lock is ``flock`` on ``<run folder>/.owner.lock``: the kernel drops
it when its process dies however it dies, so a lock is never stale, and the next run after a
killed one takes the folder over (and stops the job the dead flow left, see the align task).
The file also says who holds it, for the message the second run gets.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from hpc.run_folder import owner_lock


class RunFolderBusy(RuntimeError):
    """Another live run holds the run folder."""


class RunFolderOwner:
    """``with RunFolderOwner() as owner: ... owner.claim(root) ...``: the folder is held from
    :meth:`claim` to the end of the block."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.root: Path | None = None

    def claim(self, root: str | Path) -> str:
        """Hold ``root`` (created if missing) or raise :class:`RunFolderBusy` naming the holder."""
        path = owner_lock(Path(root))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise RunFolderBusy(
                f"{root}: in use by another run of the same inputs and settings (pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')} since {holder.get('since', '?')}); wait for it to end or cancel it, "
                "then run again (it resumes from what is done)") from None
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise RunFolderBusy(f"{root}: the file system does not support flock ({exc.strerror}); "
                                    "mount the staging folder with -o flock (Lustre) or choose another "
                                    "--staging-dir") from exc
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}).encode(), 0)
        self.fd, self.root = fd, Path(root)
        return str(root)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = None

    def __enter__(self) -> "RunFolderOwner":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
