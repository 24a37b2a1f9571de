"""PAF lines, MAPQ, and accuracy against the truth carried in simulated read names."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

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
        return (f"{self.qname}\t{self.qlen}\t{self.qstart}\t{self.qend}\t{self.strand}\t{self.tname}\t{self.tlen}\t"
                f"{self.tstart}\t{self.tend}\t{self.nmatch}\t{self.block}\t{self.mapq}\t"
                f"tp:A:{'P' if self.primary else 'S'}\tAS:i:{self.score}\tNM:i:{self.nm}\tcg:Z:{self.cigar}")


@dataclass(frozen=True)
class Truth:
    contig: str
    start: int  # 0-based
    end: int  # exclusive
    strand: str | None
    sized_by_read: bool = False  # the name gives the start only; the end is start + the read's length


def truth_from_name(name: str, mate: int = 0, qlen: int = 0) -> Truth | None:
    """Origin encoded in a read name (ours, dwgsim's or wgsim's); None when the name carries
    none. A dwgsim name holds both mates' starts: ``mate`` (1 or 2; else the name's ``/1``
    ``/2``) picks one, and the read's ``qlen`` gives its end."""
    m = _DWGSIM.match(name)
    if m:
        return _dwgsim_truth(m, mate or int(m["mate"] or 1), qlen)
    for pattern in (_OURS, _WGSIM):
        m = pattern.match(name)
        if m:
            strand = m.groupdict().get("strand")
            return Truth(m["contig"], int(m["start"]) - 1, int(m["end"]), strand)
    return None


def _dwgsim_truth(m: re.Match, which: int, qlen: int) -> Truth:
    start = int(m[f"p{which}"]) - 1
    return Truth(m["contig"], start, start + max(qlen, 1), "-" if m[f"s{which}"] == "1" else "+", True)


def mate_truths(name: str) -> tuple[Truth | None, Truth | None]:
    """Both mates' origins from one pair's name with one pattern match (for a name that
    gives one origin, both are it); ends as :func:`truth_from_name` with ``qlen`` 0."""
    m = _DWGSIM.match(name)
    if m:
        return _dwgsim_truth(m, 1, 0), _dwgsim_truth(m, 2, 0)
    one = truth_from_name(name, 1, 0)
    return one, one


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
    by_bin: dict[str, list] = {}
    correct = 0
    for hit in hits:
        if not hit.primary:
            continue
        ok = is_correct(hit, truth_from_name(hit.qname, 0, hit.qlen))
        correct += ok
        counts = by_bin.setdefault(mapq_bin(hit.mapq), [0, 0, 0.0])
        counts[0] += 1
        counts[1] += ok
        counts[2] += 10 ** (-hit.mapq / 10)
    return {
        "reads_with_truth": len(names),
        "correct": correct,
        "fraction_correct": correct / len(names),
        "by_mapq": bin_rows(by_bin),
    }


def bin_rows(by_bin: dict[str, list]) -> list[dict]:
    """The summary's ``by_mapq`` rows from ``{bin: [reads, correct, said]}``, lowest bin first;
    ``said_wrong``: how many of the bin's reads their MAPQs say are wrong (the sum of
    10^(-MAPQ/10)), beside ``wrong``, how many are: a MAPQ to trust says about as many, or more."""
    return [{"mapq": k, "reads": v[0], "correct": v[1], "fraction_correct": v[1] / v[0], "wrong": v[0] - v[1],
             "said_wrong": round(v[2], 2)}
            for k, v in sorted(by_bin.items(), key=lambda kv: int(kv[0].split("-")[0]))]


class AccuracyCounter:
    """:func:`evaluate`'s figures, fed one shard at a time (``by_read``: each read's
    alignments, primary first; ``mates`` 2: reads 2i and 2i+1 are mates 1 and 2 of a pair),
    with the count per mate for pairs. The result is None when a read name carries no truth."""

    def __init__(self) -> None:
        self.reads = self.correct = 0
        self.by_bin: dict[str, list] = {}  # bin -> [reads, correct, said wrong]
        self.mates = [[0, 0], [0, 0]]  # reads, correct: mate 1, mate 2
        self.known = True

    def add_rows(self, rows: dict, names: list[str] | np.ndarray, lengths, tnames: list[str], mates: int = 1) -> None:
        """Score one shard's primary alignments (``rows``: the job's columns; ``names`` the
        shard's read names, as text or as ``uint8`` rows, NUL-padded; ``lengths`` their lengths;
        ``tnames`` the contigs). dwgsim names given as rows are parsed by a kernel; else the
        truth is parsed once per name (once per pair), the rest over arrays."""
        if not self.known:
            return
        lengths = np.asarray(lengths, dtype=np.int64)
        truth = _dwgsim_arrays(names, lengths, tnames, mates) if isinstance(names, np.ndarray) else None
        if truth is None:
            if isinstance(names, np.ndarray):
                names = [bytes(r).rstrip(b"\0").decode("utf-8", errors="replace") for r in names]
            truth = _truth_arrays(names, lengths, tnames, mates)
        if truth is None:
            self.known = False
            return
        t_contig, t_start, t_end, t_strand = truth
        n = lengths.shape[0]
        first = rows["primary"] == 1
        read = rows["read"][first].astype(np.int64)
        tstart = rows["wstart"][first].astype(np.int64) + rows["r_start"][first]
        tend = rows["wstart"][first].astype(np.int64) + rows["r_end"][first]
        overlap = np.minimum(tend, t_end[read]) - np.maximum(tstart, t_start[read])
        union = np.maximum(tend, t_end[read]) - np.minimum(tstart, t_start[read])
        strand_ok = (t_strand[read] < 0) | (t_strand[read] == rows["strand"][first])
        ok = (rows["contig"][first] == t_contig[read]) & strand_ok & (union > 0) & (overlap >= 0.1 * union)
        self.reads += n
        self.correct += int(ok.sum())
        if mates == 2:
            for m in (0, 1):
                self.mates[m][0] += (n + 1 - m) // 2
                self.mates[m][1] += int(ok[read % 2 == m].sum())
        mapq = rows["mapq"][first].astype(np.int64)
        placed, right = np.bincount(mapq), np.bincount(mapq, weights=ok)
        for q in np.nonzero(placed)[0]:
            counts = self.by_bin.setdefault(mapq_bin(int(q)), [0, 0, 0.0])
            counts[0] += int(placed[q])
            counts[1] += int(right[q])
            counts[2] += int(placed[q]) * 10 ** (-int(q) / 10)

    def result(self) -> dict | None:
        if not self.known or not self.reads:
            return None
        out = {
            "reads_with_truth": self.reads,
            "correct": self.correct,
            "fraction_correct": self.correct / self.reads,
            "by_mapq": bin_rows(self.by_bin),
        }
        if self.mates[0][0]:
            out["by_mate"] = [{"mate": m + 1, "reads": r, "correct": c, "fraction_correct": c / r}
                              for m, (r, c) in enumerate(self.mates) if r]
        return out


def _truth_arrays(names: list[str], lengths: np.ndarray, tnames: list[str], mates: int):
    """(contig, start, end, strand) per read from names by the patterns (strand -1: not
    known; contig -1: one the reference lacks); None when a name carries no truth."""
    n = len(names)
    t_contig = np.full(n, -1, dtype=np.int64)
    t_start = np.zeros(n, dtype=np.int64)
    t_end = np.zeros(n, dtype=np.int64)
    t_strand = np.full(n, -1, dtype=np.int8)
    contig_no = {t: k for k, t in enumerate(tnames)}
    parsed: tuple[str, Truth | None, Truth | None] = ("", None, None)
    for i, name in enumerate(names):
        mate = 1 + (i & 1) if mates == 2 else 0
        if mate == 0:
            truth = truth_from_name(name)
        else:
            if name != parsed[0]:
                parsed = (name, *mate_truths(name))
            truth = parsed[mate]
        if truth is None:
            return None
        t_contig[i] = contig_no.get(truth.contig, -1)
        t_start[i] = truth.start
        t_end[i] = truth.start + int(lengths[i]) if truth.sized_by_read else truth.end
        t_strand[i] = -1 if truth.strand is None else int(truth.strand == "-")
    return t_contig, t_start, t_end, t_strand


def _dwgsim_arrays(names: np.ndarray, lengths: np.ndarray, tnames: list[str], mates: int):
    """:func:`_truth_arrays` for dwgsim names given as ``uint8`` rows, by a kernel; None when
    one name is not dwgsim's."""
    from hpc.kernels.text import parse_dwgsim, prefix_hashes

    n = names.shape[0]
    out = np.zeros((n, 6), dtype=np.int64)
    if n == 0 or parse_dwgsim(names, out) < n:
        return None
    which = (np.arange(n) & 1) if mates == 2 else np.maximum(out[:, 5], 1) - 1  # 0: mate 1's fields
    t_start = np.where(which == 0, out[:, 1], out[:, 2]) - 1
    t_strand = np.where(which == 0, out[:, 3], out[:, 4]).astype(np.int8)
    width = names.shape[1]
    prefix = np.where(np.arange(width)[None, :] < out[:, :1], names, 0).astype(np.uint8)
    # The contig part of each name, grouped by a hash (a sort of integers, not of strings);
    # every name is checked against its group's first, so a collision cannot mislabel one.
    hashes = np.empty(n, dtype=np.uint64)
    prefix_hashes(names, out[:, 0], hashes)
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    if not np.array_equal(prefix, prefix[first[inverse]]):
        _, first, inverse = np.unique(np.ascontiguousarray(prefix).view(f"S{width}").ravel(), return_index=True,
                                      return_inverse=True)
    contig_no = {t.encode(): k for k, t in enumerate(tnames)}
    t_contig = np.array([contig_no.get(prefix[f].tobytes().rstrip(b"\0"), -1) for f in first.tolist()],
                        dtype=np.int64)[inverse.ravel()]
    return t_contig, t_start, t_start + lengths, t_strand


_BIN_OF = [_mapq_bin(q) for q in range(MAPQ_MAX + 1)]
