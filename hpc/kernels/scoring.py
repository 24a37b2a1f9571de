"""Alignment scores, checked once: the contract every Smith-Waterman kernel is called with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scoring:
    """Scores for local alignment; gaps and mismatches are negative numbers."""

    match: int = 2
    mismatch: int = -4
    gap_open: int = -6
    gap_extend: int = -1

    def __post_init__(self) -> None:
        if self.match <= 0:
            raise ValueError(f"scoring.match must be > 0, got {self.match}")
        if self.mismatch >= self.match:
            raise ValueError(
                f"scoring.mismatch must be < match ({self.match}), got {self.mismatch}"
            )
        if self.gap_open > 0 or self.gap_extend > 0:
            raise ValueError(
                "scoring.gap_open and scoring.gap_extend must be <= 0 (they are penalties "
                f"added to the score), got gap_open={self.gap_open}, gap_extend={self.gap_extend}"
            )
        if self.gap_extend < self.gap_open:
            raise ValueError(
                f"scoring.gap_extend ({self.gap_extend}) must not be a larger penalty than "
                f"gap_open ({self.gap_open})"
            )
