"""Per-sample QC a person reads at a glance: ``samtools flagstat``'s counts (kept to its
rules, so the two agree on our BAM), the MAPQ distribution and the insert-size histogram."""

from __future__ import annotations

import numpy as np

from tasks.genomics.paf import mapq_bin

INSERT_BIN = 10  # bp per bar of the insert-size histogram
INSERT_MAX = 2000  # longer inserts share the last bar


class QcCounter:
    """Counts over a sample's reads, fed one shard at a time (``mates`` 2: reads 2i and
    2i+1 are a pair)."""

    def __init__(self) -> None:
        self.c = dict.fromkeys(("reads", "records", "primary", "secondary", "mapped", "primary_mapped", "paired",
                                "read1", "read2", "properly_paired", "with_itself_and_mate_mapped", "singletons",
                                "mate_on_different_contig", "mate_on_different_contig_mapq5"), 0)
        self.mapq: dict[str, int] = {}
        self.inserts = np.zeros(INSERT_MAX // INSERT_BIN + 1, dtype=np.int64)

    def add_rows(self, rows: dict[str, np.ndarray], n_reads: int, proper: np.ndarray | None, mates: int) -> None:
        """Count one shard from its alignment columns (``rows``: the job's rows of the shard,
        primary first per read), over arrays: no Python loop per read."""
        c = self.c
        read = rows["read"].astype(np.int64)
        per_read = np.bincount(read, minlength=n_reads)
        first = rows["primary"] == 1
        own = np.full(n_reads, -1, dtype=np.int64)  # each read's primary row, -1: unmapped
        own[read[first]] = np.nonzero(first)[0]
        has = own >= 0
        c["reads"] += n_reads
        c["primary"] += n_reads
        c["records"] += int(np.maximum(per_read, 1).sum())
        c["secondary"] += int(np.maximum(per_read - 1, 0).sum())
        c["mapped"] += int(per_read.sum())
        c["primary_mapped"] += int(has.sum())
        mapq = rows["mapq"].astype(np.int64)[own[has]]
        for q, k in zip(*np.unique(mapq, return_counts=True)):
            key = mapq_bin(int(q))
            self.mapq[key] = self.mapq.get(key, 0) + int(k)
        if mates != 2:
            return
        c["paired"] += n_reads
        c["read1"] += (n_reads + 1) // 2
        c["read2"] += n_reads // 2
        mate = np.arange(n_reads) ^ 1
        mate_ok = mate < n_reads
        other = np.where(mate_ok, own[np.minimum(mate, n_reads - 1)], -1)
        both = has & (other >= 0)
        contig = rows["contig"].astype(np.int64)
        tstart = rows["wstart"].astype(np.int64) + rows["r_start"]
        tend = rows["wstart"].astype(np.int64) + rows["r_end"]
        o, m = own[both], other[both]
        apart = contig[o] != contig[m]
        c["singletons"] += int((has & (other < 0)).sum())
        c["with_itself_and_mate_mapped"] += int(both.sum())
        c["mate_on_different_contig"] += int(apart.sum())
        c["mate_on_different_contig_mapq5"] += int((rows["mapq"][o][apart] >= 5).sum())
        is_proper = has & (np.asarray(proper, dtype=bool) if proper is not None else np.zeros(n_reads, bool))
        c["properly_paired"] += int(is_proper.sum())
        ins = is_proper & both & (np.arange(n_reads) % 2 == 0)
        o, m = own[ins], other[ins]
        o, m = o[contig[o] == contig[m]], m[contig[o] == contig[m]]
        span = np.maximum(tend[o], tend[m]) - np.minimum(tstart[o], tstart[m])
        np.add.at(self.inserts, np.minimum(span, INSERT_MAX) // INSERT_BIN, 1)

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
