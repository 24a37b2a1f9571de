"""Where a sample's time and memory went: wall seconds of every stage the flow runs, the
driver's peak resident memory after it, and for the align job each rank's own figures
(from the completion markers the ranks write). The flow times its calls with
:class:`StageClock`; :func:`tasks.collect.record_stages` puts the rows in the summary and
an artifact."""

from __future__ import annotations

import json
import resource
import time
from contextlib import contextmanager
from pathlib import Path

MIB = 2**20


def peak_rss_bytes() -> int:
    """This process's resident-memory high-water mark (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class StageClock:
    """Rows ``{"stage", "seconds", "driver_peak_rss_mib"}`` in the order the stages ran."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.rows.append({"stage": name, "seconds": round(time.perf_counter() - t0, 2),
                              "driver_peak_rss_mib": round(peak_rss_bytes() / MIB)})


def rank_rows(markers: list[Path]) -> list[dict]:
    """One row per rank of the align job: its seconds of work, CPU seconds and peak RSS,
    read from its completion marker (a marker that cannot be read is left out)."""
    rows = []
    for path in markers:
        try:
            m = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
        rows.append({"stage": f"align rank {m.get('rank')}", "seconds": round(float(m.get("seconds", 0.0)), 2),
                     "cpu_seconds": round(float(m.get("cpu_s", 0.0)), 2),
                     "peak_rss_mib": round(int(m.get("max_rss_bytes", 0)) / MIB)})
    return rows
