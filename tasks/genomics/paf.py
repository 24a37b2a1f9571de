"""PAF lines, MAPQ, and accuracy against the truth carried in simulated read names."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hpc.mapq import MAPQ_MAX, mapq_from_scores  # noqa: F401 - where collect and tests look

MAPQ_BINS = (0, 1, 10, 20, 30, 60)  # lower bounds of the bins reported in summaries

_OURS = re.compile(r"^(?P<contig>.+)_(?P<start>\d+)_(?P<end>\d+)_(?P<strand>[+-])_\d+$")
_DWGSIM = re.compile(r"^(?P<contig>.+)_(?P<p1>\d+)_(?P<p2>\d+)_(?P<s1>[01])_(?P<s2>[01])_[01]_[01]_\d+:\d+:\d+_"
                     r"\d+:\d+:\d+_[0-9a-f]+(?:/(?P<mate>[12]))?$")
_WGSIM = re.compile(r"^(?P<contig>.+)_(?P<start>\d+)_(?P<end>\d+)_\d+:\d+:\d+_\d+:\d+:\d+_[0-9a-f]+(?:/[12])?$")


@dataclass(slots=True)
class Hit:
    """One alignment of a read, in PAF's terms (0-based, ends exclusive); ``primary`` is
    False for a secondary alignment at another locus (``tp:A:S``)."""

    qname: str
    qlen: int
    qstart: int
    qend: int
    strand: str
    tname: str
    tlen: int
    tstart: int
    tend: int
    nmatch: int
    block: int
    mapq: int
    score: int
    nm: int
    cigar: str
    primary: bool = True

    @classmethod
    def from_paf_line(cls, line: str) -> "Hit":
        """A PAF line back into a Hit (tags it lacks read as 0 / empty)."""
        c = line.rstrip("\n").split("\t")
        tags = dict(t.split(":", 2)[0::2] for t in c[12:] if t.count(":") >= 2)
        return cls(c[0], int(c[1]), int(c[2]), int(c[3]), c[4], c[5], int(c[6]), int(c[7]), int(c[8]),
                   int(c[9]), int(c[10]), int(c[11]), int(tags.get("AS", 0)), int(tags.get("NM", 0)),
                   tags.get("cg", ""), tags.get("tp", "P") == "P")

    def paf_line(self) -> str:
        cols = (
            self.qname, self.qlen, self.qstart, self.qend, self.strand, self.tname, self.tlen,
            self.tstart, self.tend, self.nmatch, self.block, self.mapq,
            "tp:A:P" if self.primary else "tp:A:S", f"AS:i:{self.score}", f"NM:i:{self.nm}", f"cg:Z:{self.cigar}",
        )
        return "\t".join(str(c) for c in cols)


@dataclass(frozen=True)
class Truth:
    contig: str
    start: int  # 0-based
    end: int  # exclusive
    strand: str | None


def truth_from_name(name: str, mate: int = 0, qlen: int = 0) -> Truth | None:
    """Origin encoded in a read name (ours, dwgsim's or wgsim's); None when the name carries
    none. A dwgsim name holds both mates' starts: ``mate`` (1 or 2; else the name's ``/1``
    ``/2``) picks one, and the read's ``qlen`` gives its end."""
    m = _DWGSIM.match(name)
    if m:
        which = mate or int(m["mate"] or 1)
        start = int(m[f"p{which}"]) - 1
        return Truth(m["contig"], start, start + max(qlen, 1), "-" if m[f"s{which}"] == "1" else "+")
    for pattern in (_OURS, _WGSIM):
        m = pattern.match(name)
        if m:
            strand = m.groupdict().get("strand")
            return Truth(m["contig"], int(m["start"]) - 1, int(m["end"]), strand)
    return None


def is_correct(hit: Hit, truth: Truth, min_overlap: float = 0.1) -> bool:
    """paftools mapeval's rule: same contig (and strand, when known), overlap >= 10% of union."""
    if hit.tname != truth.contig or (truth.strand is not None and hit.strand != truth.strand):
        return False
    overlap = min(hit.tend, truth.end) - max(hit.tstart, truth.start)
    union = max(hit.tend, truth.end) - min(hit.tstart, truth.start)
    return union > 0 and overlap >= min_overlap * union


def mapq_bin(mapq: int) -> str:
    return _BIN_OF[mapq] if 0 <= mapq <= MAPQ_MAX else _mapq_bin(mapq)


def _mapq_bin(mapq: int) -> str:
    lows = [b for b in MAPQ_BINS if mapq >= b]
    low = lows[-1]
    nxt = [b for b in MAPQ_BINS if b > low]
    return f"{low}-{nxt[0] - 1}" if nxt else f"{low}"


def evaluate(hits: list[Hit], names: list[str]) -> dict | None:
    """Accuracy of the primary alignments over all reads (unmapped count as wrong) and by
    MAPQ bin; None without truth."""
    truths = {n: truth_from_name(n) for n in names}
    if not names or any(t is None for t in truths.values()):
        return None
    by_bin: dict[str, list[int]] = {}
    correct = 0
    for hit in hits:
        if not hit.primary:
            continue
        ok = is_correct(hit, truth_from_name(hit.qname, 0, hit.qlen))
        correct += ok
        counts = by_bin.setdefault(mapq_bin(hit.mapq), [0, 0])
        counts[0] += 1
        counts[1] += ok
    return {
        "reads_with_truth": len(names),
        "correct": correct,
        "fraction_correct": correct / len(names),
        "by_mapq": [
            {"mapq": k, "reads": v[0], "correct": v[1], "fraction_correct": v[1] / v[0]}
            for k, v in sorted(by_bin.items(), key=lambda kv: int(kv[0].split("-")[0]))
        ],
    }


class AccuracyCounter:
    """:func:`evaluate`'s figures, fed one shard at a time (``by_read``: each read's
    alignments, primary first; ``mates`` 2: reads 2i and 2i+1 are mates 1 and 2 of a pair),
    with the count per mate for pairs. The result is None when a read name carries no truth."""

    def __init__(self) -> None:
        self.reads = self.correct = 0
        self.by_bin: dict[str, list[int]] = {}
        self.mates = [[0, 0], [0, 0]]  # reads, correct: mate 1, mate 2
        self.known = True

    def add(self, by_read: list[list[Hit]], names: list[str], mates: int = 1) -> None:
        if not self.known:
            return
        for i, (hits, name) in enumerate(zip(by_read, names)):
            mate = 1 + (i & 1) if mates == 2 else 0
            own = hits[0] if hits else None
            truth = truth_from_name(name, mate, own.qlen if own else 0)
            if truth is None:
                self.known = False
                return
            ok = own is not None and is_correct(own, truth)
            self.reads += 1
            self.correct += ok
            if mate:
                self.mates[mate - 1][0] += 1
                self.mates[mate - 1][1] += ok
            if own is not None:
                counts = self.by_bin.setdefault(mapq_bin(own.mapq), [0, 0])
                counts[0] += 1
                counts[1] += ok

    def result(self) -> dict | None:
        if not self.known or not self.reads:
            return None
        out = {
            "reads_with_truth": self.reads,
            "correct": self.correct,
            "fraction_correct": self.correct / self.reads,
            "by_mapq": [
                {"mapq": k, "reads": v[0], "correct": v[1], "fraction_correct": v[1] / v[0]}
                for k, v in sorted(self.by_bin.items(), key=lambda kv: int(kv[0].split("-")[0]))
            ],
        }
        if self.mates[0][0]:
            out["by_mate"] = [{"mate": m + 1, "reads": r, "correct": c, "fraction_correct": c / r}
                              for m, (r, c) in enumerate(self.mates) if r]
        return out


_BIN_OF = [_mapq_bin(q) for q in range(MAPQ_MAX + 1)]
