"""A helixflow process's own settings and its end.

After its last write a process that has loaded Numba, NumPy, Prefect or Ray spends a good
while tearing them down: 1.2 s for the CLI here, 0.3 s for an alignment job's two ranks.
Nothing is written in that teardown, so :func:`end_process` skips it.
:func:`fixed_mmap_threshold` keeps a process that frees large arrays shard after shard from
keeping their memory.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import sys
import threading
from typing import NoReturn


def end_process(code: int) -> NoReturn:
    """Exit with ``code`` as Python's own exit would, less its teardown of the loaded modules:
    the threads' exit hooks (Prefect drains its log and event queues there) and joins, the
    exit handlers, then stdout and stderr flushed. Call from the main thread, once its work
    is done; what is registered with C's ``Py_AtExit`` (mpi4py's MPI_Finalize) is the caller's."""
    # The interpreter's own first two steps at exit, in its order.
    threading._shutdown()  # noqa: SLF001
    atexit._run_exitfuncs()  # noqa: SLF001
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can be said on it
            stream.flush()
    os._exit(code)


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_ALLOCATION = 1 << 20


def fixed_mmap_threshold(size: int = LARGE_ALLOCATION) -> bool:
    """Every allocation of ``size`` bytes or more from then on gets pages of its own, returned
    to the system when freed (glibc's ``mallopt(M_MMAP_THRESHOLD)``, which also ends glibc's
    own raising of that threshold). Without it, after the first large array is freed glibc
    raises the threshold up to 32 MiB and serves later arrays from its heaps, which keep what
    is freed there: collect's process kept 136-190 MiB more after 20 shards and went on
    growing with the shard count (its peak 319-330 MiB at 2M reads, 257-259 with the fixed
    threshold), for about 10% more of collect's time (fresh pages). False where the C
    library is not glibc."""
    mallopt = _glibc("mallopt")
    return bool(mallopt(M_MMAP_THRESHOLD, size)) if mallopt else False


def release_free_memory() -> bool:
    """Give the C heap's free pages back to the system now (glibc's ``malloc_trim(0)``, every
    thread's arena). Arrays under :func:`fixed_mmap_threshold`'s size still come from the
    heaps, and a long-lived small one among them keeps what is freed below it: collect's
    process kept 25-45 MiB more so after 100 shards than after 20. False where the C library
    is not glibc."""
    trim = _glibc("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _glibc(name: str):
    """The C library's function ``name`` (looked up once per process), or None where it has none."""
    import ctypes

    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
