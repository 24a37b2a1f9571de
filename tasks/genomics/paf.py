"""PAF lines, MAPQ, and accuracy against the truth carried in simulated read names."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAPQ_MAX = 60
MAPQ_BINS = (0, 1, 10, 20, 30, 60)  # lower bounds of the bins reported in summaries

_OURS = re.compile(r"^(?P<contig>.+)_(?P<start>\d+)_(?P<end>\d+)_(?P<strand>[+-])_\d+$")
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


MAPQ_PER_MISMATCH = 20  # phred points per mismatch's worth of score between best and runner-up


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


def truth_from_name(name: str) -> Truth | None:
    """Origin encoded in a read name (ours or wgsim's); None when the name carries none."""
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
        ok = is_correct(hit, truths[hit.qname])
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
