"""The end of a helixflow process: Python's own exit less its teardown of the loaded modules.

After its last write a process that has loaded Numba, NumPy, Prefect or Ray spends a good
while tearing them down: 1.2 s for the CLI here, 0.3 s for an alignment job's two ranks.
Nothing is written in that teardown, so :func:`end_process` skips it.
"""

from __future__ import annotations

import atexit
import contextlib
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
