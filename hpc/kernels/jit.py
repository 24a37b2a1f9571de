"""The one set of Numba ``njit`` options every kernel is compiled with.

``cache=True`` keeps compiled code under ``NUMBA_CACHE_DIR`` (or beside the module), so a
rank or Ray worker loads it instead of compiling; ``fastmath`` stays off so integer DP and
float statistics are exact and reproducible.
"""

NJIT = dict(nogil=True, cache=True, fastmath=False)
