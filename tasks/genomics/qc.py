"""Per-sample QC a person reads at a glance: ``samtools flagstat``'s counts (kept to its
rules, so the two agree on our BAM), the MAPQ distribution and the insert-size histogram."""

from __future__ import annotations

import numpy as np

from tasks.genomics.paf import Hit, mapq_bin

INSERT_BIN = 10  # bp per bar of the insert-size histogram
INSERT_MAX = 2000  # longer inserts share the last bar


class QcCounter:
    """Counts over a sample's reads, fed one shard at a time (``by_read``: each read's
    alignments, primary first; ``mates`` 2: reads 2i and 2i+1 are a pair)."""

    def __init__(self) -> None:
        self.c = dict.fromkeys(("reads", "records", "primary", "secondary", "mapped", "primary_mapped", "paired",
                                "read1", "read2", "properly_paired", "with_itself_and_mate_mapped", "singletons",
                                "mate_on_different_contig", "mate_on_different_contig_mapq5"), 0)
        self.mapq: dict[str, int] = {}
        self.inserts = np.zeros(INSERT_MAX // INSERT_BIN + 1, dtype=np.int64)

    def add_shard(self, by_read: list[list[Hit]], proper: np.ndarray | None, mates: int) -> None:
        c = self.c
        for i, hits in enumerate(by_read):
            c["reads"] += 1
            c["primary"] += 1
            c["records"] += max(len(hits), 1)
            c["secondary"] += max(len(hits) - 1, 0)
            c["mapped"] += len(hits)
            own = hits[0] if hits else None
            if own is not None:
                c["primary_mapped"] += 1
                key = mapq_bin(own.mapq)
                self.mapq[key] = self.mapq.get(key, 0) + 1
            if mates != 2:
                continue
            other = by_read[i ^ 1][0] if by_read[i ^ 1] else None
            c["paired"] += 1
            c["read1" if i % 2 == 0 else "read2"] += 1
            if own is None:
                continue
            if proper is not None and proper[i]:
                c["properly_paired"] += 1
                if i % 2 == 0 and other is not None and other.tname == own.tname:
                    span = max(own.tend, other.tend) - min(own.tstart, other.tstart)
                    self.inserts[min(span, INSERT_MAX) // INSERT_BIN] += 1
            if other is None:
                c["singletons"] += 1
            else:
                c["with_itself_and_mate_mapped"] += 1
                if other.tname != own.tname:
                    c["mate_on_different_contig"] += 1
                    c["mate_on_different_contig_mapq5"] += own.mapq >= 5

    def result(self) -> dict:
        out = dict(self.c)
        out["mapq"] = [{"mapq": k, "reads": v} for k, v in sorted(self.mapq.items(), key=lambda kv: int(kv[0].split("-")[0]))]
        n = int(self.inserts.sum())
        if n:
            mids = np.arange(self.inserts.shape[0]) * INSERT_BIN + INSERT_BIN // 2
            mean = float((mids * self.inserts).sum() / n)
            median = int(mids[np.searchsorted(np.cumsum(self.inserts), (n + 1) // 2)])
            out["insert_size"] = {"pairs": n, "mean": round(mean, 1), "median": median, "bin_bp": INSERT_BIN,
                                  "histogram": [[int(m - INSERT_BIN // 2), int(k)] for m, k in zip(mids, self.inserts)
                                                if k]}
        else:
            out["insert_size"] = None
        return out
