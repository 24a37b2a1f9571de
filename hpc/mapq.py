"""MAPQ from alignment scores: one model, used by the MPI job (which writes MAPQ) and by
readers of older rank outputs."""

from __future__ import annotations

import numpy as np

MAPQ_MAX = 60
MAPQ_PER_MISMATCH = 20  # phred points per mismatch's worth of score between best and runner-up
FULL_SUPPORT_BASES = 60  # read bases behind a hit's seeds for its full MAPQ (minimap2: 10 anchors at w=11)


def mapq_from_scores(best: int, second: int, mismatch_cost: int = 6) -> int:
    """Phred-like confidence from the score gap to the best alignment at another locus.

    0 when the runner-up scores as well as the best (a read in an exact repeat is not
    guessed). Each mismatch's worth of score in the gap (``mismatch_cost`` = match -
    mismatch) adds 20, up to 60: with 0.1-1% sequencing error, the runner-up winning by
    chance needs errors that happen to match it, about 1 in 100 per mismatch of gap.
    """
    if best <= 0:
        return 0
    gap = max(best - max(second, 0), 0)
    return int(min(MAPQ_MAX, round(MAPQ_PER_MISMATCH * gap / mismatch_cost)))


def mapq_array(best: np.ndarray, second: np.ndarray, mismatch_cost: int = 6) -> np.ndarray:
    """:func:`mapq_from_scores` over arrays (int64), the same rounding (half to even)."""
    best = np.asarray(best, dtype=np.int64)
    gap = np.maximum(best - np.maximum(np.asarray(second, dtype=np.int64), 0), 0)
    q = np.minimum(MAPQ_MAX, np.round(MAPQ_PER_MISMATCH * gap / mismatch_cost)).astype(np.int64)
    return np.where(best > 0, q, 0)


def scale_by_support(mapq: np.ndarray, votes: np.ndarray | None, w: int) -> np.ndarray:
    """MAPQ scaled down when few seeds found the hit, as minimap2 scales by a chain's anchors
    (``min(1, anchors / 10)``): a hit that few seeds support (a short aligned part, the rest
    clipped: adapters, two-colour poly-G tails) has no runner-up because seeding found none,
    not because none exists. ``votes``: the seed hits behind each hit; with (w,k)-minimizers
    one comes about every ``(w + 1) / 2`` bases, so the scale is ``min(1, votes * (w + 1) / 2
    / 60)``, the same bases of support whatever ``w``. Unscaled where the seed hits are not known."""
    if votes is None:
        return mapq
    q = np.asarray(mapq, dtype=np.int64)
    full = 2 * FULL_SUPPORT_BASES
    return q * np.minimum(np.asarray(votes, dtype=np.int64) * (w + 1), full) // full
