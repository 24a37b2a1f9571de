"""The one set of Numba ``njit`` options every kernel is compiled with, and where compiled
kernels are cached.

``cache=True`` keeps compiled code, so a rank or Ray worker loads it instead of compiling;
``fastmath`` stays off so integer DP and float statistics are exact and reproducible.

Numba invalidates a cached function when its own file changes, not when a function it calls
from another file does: after ``scalar.py`` changed, ``batch.trace_pairs`` kept running the
old ``sw_traceback_band`` it had inlined (seen here as a heap corruption that a fresh cache
did not have). So the cache lives in a folder named by a fingerprint of every kernel source:
any change to any of them compiles everything afresh, and nothing is ever deleted under a
process that is loading it. The folder is below ``NUMBA_CACHE_DIR`` when that is set,
else in ``__pycache__`` beside these modules.
"""

import hashlib
import os
from pathlib import Path

import numba

NJIT = dict(nogil=True, cache=True, fastmath=False)


def kernel_fingerprint() -> str:
    """sha256 (16 hex digits) of the kernel sources and the base codes they share."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in [*sorted(here.glob("*.py")), here.parent / "codec.py"]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir() -> str:
    base = os.environ.get("NUMBA_CACHE_DIR") or str(Path(__file__).resolve().parent / "__pycache__")
    return os.path.join(base, f"helixflow-{kernel_fingerprint()}")


# Read by Numba when each kernel is decorated; every kernel module imports NJIT from here first.
numba.config.CACHE_DIR = cache_dir()
