"""Where a reference index build stands, for the task that waits on it: a small JSON record
beside the genome's cache folder, written by the build (:class:`ProgressFile`) and read by
the waiting task (:func:`build_progress`, :func:`build_step_line`)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hpc.run_folder import genome_cache

BUILD_PROGRESS = "build.progress.json"  # beside the genome folder while an index of it is built


def build_progress(staging_dir: str | Path, reference_sha256: str) -> dict | None:
    """Where a build of the reference's index stands (``step``, ``fraction``, ``k``, ``w``,
    ``bases``), as :func:`build_cached_index` last wrote it; None when no build is under way."""
    try:
        return json.loads(progress_path(staging_dir, reference_sha256).read_text())
    except (OSError, ValueError):
        return None


def progress_path(staging_dir: str | Path, reference_sha256: str) -> Path:
    return genome_cache(staging_dir, reference_sha256).parent / BUILD_PROGRESS


# Each step of a build: its start and its end, as percent of the whole (by time measured on
# 300 Mbp and 3.1 Gbp with two threads: packing a quarter, sketching and placing about a third
# each, sorting a tenth; at 3.1 Gbp 27, 31, 39, 9 and 2 s of 108).
BUILD_STEPS = {"checking the packed genome": (0, 5), "packing": (0, 25), "sketching": (25, 57), "placing": (57, 89),
               "sorting": (89, 97), "checksums": (97, 99)}


def build_step_line(where: dict) -> tuple[str, float]:
    """A build's progress record (:func:`build_progress`) as a line to log and a percent."""
    step, fraction = str(where.get("step", "")), float(where.get("fraction", 0.0))
    lo, hi = BUILD_STEPS.get(step, (0, 0))
    line = step
    if step in ("sketching", "placing"):
        line = f"{step} {fraction:.0%}" + (f" of {where['bases']:,} bases" if "bases" in where else "")
    if "k" in where:
        line += f" (k={where['k']}, w={where['w']})"
    return line, round(lo + (hi - lo) * fraction, 1)


class ProgressFile:
    """``progress(step, fraction)`` written to a JSON file at most every ``every`` seconds
    (each new step at once), for the task that waits on the build to read. The record is
    overwritten in place, padded to a fixed length, never renamed, truncated or synced: on
    ext4 each of those flushes dirty data, and with the index's gigabytes of dirty pages a
    3.1-Gbp build took 243-272 s with such writes every 2 s against 208 s without
    (:func:`build_progress` reads a record caught half-written as none)."""

    SIZE = 512

    def __init__(self, path: Path, every: float = 10.0) -> None:
        self.path, self.every, self.fields, self.last, self.step = path, every, {}, 0.0, None

    def __call__(self, step: str, fraction: float = 0.0) -> None:
        now = time.monotonic()
        if step == self.step and now - self.last < self.every:
            return
        self.step, self.last = step, now
        record = json.dumps({"step": step, "fraction": round(fraction, 4), **self.fields}).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, record.ljust(self.SIZE), 0)
        finally:
            os.close(fd)
