"""How an alignment job's ranks share its reads: contiguous ranges holding near-equal DP
cells (window length x read length over each read's candidate windows), cut only between
pairs when mates travel together. A rank finds its own range from each shard's total and
the per-read cells of at most two shards, never from an array over the whole run."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def split_by_cells(cells: np.ndarray, ranks: int, step: int = 1) -> list[tuple[int, int]]:
    """Contiguous [lo, hi) item ranges, one per rank, with near-equal sums of ``cells``; every
    cut falls on a multiple of ``step`` (2: the mates of a pair stay on one rank)."""
    totals, sizes = [int(cells.sum())], [len(cells)]
    return [share_of(totals, sizes, lambda _: cells, ranks, r, step) for r in range(ranks)]


def share_of(totals: Sequence[int], sizes: Sequence[int], cells_of: Callable[[int], np.ndarray], ranks: int,
             rank: int, step: int = 1) -> tuple[int, int]:
    """:func:`split_by_cells`'s range for ``rank`` over items kept in parts (a run's shards):
    ``totals`` and ``sizes`` are each part's sum of cells and count of items, ``cells_of(s)``
    part ``s``'s cells per item, asked for only where a cut falls (at most two parts). A rank
    so holds no array over the whole run, however many reads it has."""
    grand, ends = sum(totals), np.cumsum(np.asarray(totals, dtype=np.int64))
    bases = np.cumsum([0, *sizes])
    seen: dict[int, np.ndarray] = {}

    def cut(r: int) -> int:
        if r == 0:
            return 0
        if r == ranks:
            return int(bases[-1])
        if not grand:
            return 0
        target = grand * r / ranks
        s = int(np.searchsorted(ends, target, side="left"))  # the first part whose end reaches the target
        if s not in seen:
            seen[s] = np.cumsum(cells_of(s), dtype=np.int64) + (int(ends[s]) - int(totals[s]))
        within = seen[s]
        at = int(bases[s]) + int(np.searchsorted(within, target, side="left")) + 1
        return at - at % step

    lo = cut(rank)
    return lo, max(lo, cut(rank + 1))


def window_cells(start: np.ndarray, end: np.ndarray, qlen: np.ndarray) -> np.ndarray:
    """DP cells of each candidate window: window length x read length."""
    return (end - start) * qlen.astype(np.int64)


def read_cells(candidates: dict[str, np.ndarray], reads: int) -> np.ndarray:
    """DP cells per read of one shard: the sum of :func:`window_cells` over its candidate windows."""
    cells = np.zeros(reads, dtype=np.int64)
    np.add.at(cells, candidates["read"], window_cells(candidates["start"], candidates["end"], candidates["qlen"]))
    return cells
