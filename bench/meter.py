"""Process-tree sampler for benchmarks: CPU seconds and resident memory over time.

A thread samples this process and every descendant (Ray's raylet and workers, mpiexec and
its ranks) every ``interval`` seconds with psutil. CPU time of a process that exits is
kept at its last sample, so short-lived ranks count up to their last sample (the align
stage also reads exact figures from the rank markers). :meth:`window` then gives the CPU
seconds and peak RSS between two wall-clock times, e.g. one task run's start and end.
Each process's own peak (:attr:`TreeSampler.peak_by_pid`) is the kernel's high-water mark
(``VmHWM``), not the largest sampled RSS: a shard's peak lasts a fraction of a second, and a
sampler catches it more often the more shards there are (a rank's sampled peak was 5 MiB
higher at 10M reads than at 2M where its ``ru_maxrss`` was the same).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil


def high_water(pid: int) -> int | None:
    """A process's peak resident set so far (``VmHWM``, bytes), or None where /proc has none."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@dataclass
class Sample:
    t: float  # time.time()
    cpu_s: float  # cumulative CPU seconds of the tree since the sampler started
    peak_rss: int  # largest resident set of any one process in the tree, bytes
    tree_rss: int  # sum over the tree, bytes


@dataclass
class TreeSampler:
    interval: float = 0.1
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _base: dict[int, float] = field(default_factory=dict)
    _last: dict[int, float] = field(default_factory=dict)
    peak_by_pid: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid -> (name, high-water mark, bytes)

    def _take(self) -> Sample:
        root = psutil.Process()
        procs = [root]
        try:
            procs += root.children(recursive=True)
        except psutil.Error:
            pass
        peak = tree = 0
        for p in procs:
            try:
                with p.oneshot():
                    cpu = sum(p.cpu_times()[:2])
                    rss = p.memory_info().rss
            except psutil.Error:
                continue
            self._base.setdefault(p.pid, cpu if not self.samples else 0.0)
            self._last[p.pid] = cpu
            top = high_water(p.pid) or rss
            if top > self.peak_by_pid.get(p.pid, ("", 0))[1]:
                try:
                    name = " ".join(p.cmdline()[:3])[:80] or p.name()
                except psutil.Error:
                    name = "?"
                self.peak_by_pid[p.pid] = (name, top)
            peak, tree = max(peak, rss), tree + rss
        used = sum(self._last[pid] - self._base[pid] for pid in self._last)
        return Sample(time.time(), used, peak, tree)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(self._take())

    def __enter__(self) -> "TreeSampler":
        self.samples.append(self._take())
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.samples.append(self._take())

    def window(self, start: float, end: float) -> dict:
        """CPU seconds and peak RSS (one process, and the whole tree) between two times."""
        inside = [s for s in self.samples if start <= s.t <= end]
        before = [s for s in self.samples if s.t < start]
        after = [s for s in self.samples if s.t > end]
        first = before[-1] if before else (inside[0] if inside else None)
        last = after[0] if after else (inside[-1] if inside else None)
        if first is None or last is None:
            return {"cpu_s": 0.0, "peak_rss_bytes": 0, "tree_rss_bytes": 0}
        around = inside + ([last] if after else [])
        return {"cpu_s": max(0.0, last.cpu_s - first.cpu_s),
                "peak_rss_bytes": max((s.peak_rss for s in around), default=0),
                "tree_rss_bytes": max((s.tree_rss for s in around), default=0)}
