"""Merge the ranks' alignment columns into a sample's files, one shard at a time: PAF,
coordinate-sorted BAM (+ index) and, on request, SAM; the QC counts and the accuracy when
read names carry the truth. Memory: the ranks' numeric columns plus one shard's records."""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpc.align_job import COLUMNS, empty_columns, rank_shards, shard_rows
from hpc.files import atomic_stream, atomic_write_text
from hpc.genome import read_genome_json
from hpc.manifest import (ManifestError, StagedRun, load_manifest, load_npz_verified, manifest_settings,
                          verify_entry)
from hpc.run_folder import AlignOutputs
from tasks.genomics.bam import SortedBamWriter
from tasks.genomics.encoding import EncodedShard, decode_sequences
from tasks.genomics.paf import AccuracyCounter, Hit, mapq_from_scores
from tasks.genomics.qc import QcCounter
from tasks.genomics.samplesheet import safe_file_stem
from tasks.genomics.sam import Mate, ReadGroup, sam_header, sam_records


@dataclass(frozen=True)
class SampleOutputs:
    """What collect writes for one sample, and the names it writes them under."""

    sample: str = "sample"
    stem: str = ""  # file names: <stem>.paf, <stem>.bam ...; default: safe_file_stem(sample)
    read_group: ReadGroup | None = None
    bam: bool = True
    sam: bool = False
    version: str = ""
    command_line: str = ""
    threads: int = 2

    @property
    def file_stem(self) -> str:
        return self.stem or safe_file_stem(self.sample)

    def paths(self, out: Path) -> dict[str, Path]:
        s = self.file_stem
        return {"paf": out / f"{s}.paf", "bam": out / f"{s}.bam", "bai": out / f"{s}.bam.bai",
                "sam": out / f"{s}.sam", "summary": out / f"{s}.summary.json"}

    def group(self) -> ReadGroup:
        return self.read_group or ReadGroup(id=self.sample, sample=self.sample)


class ReconciliationError(ManifestError):
    """The rank outputs do not account for every staged read exactly once."""


class RankOutputs:
    """The ranks' outputs of one attempt, opened once, read one shard at a time."""

    def __init__(self, outputs: AlignOutputs) -> None:
        self.files = [np.load(outputs.output(r), allow_pickle=False) for r in range(outputs.ranks)]
        self.holds = [set(rank_shards(f)) for f in self.files]

    def shard(self, shard: int) -> dict[str, np.ndarray]:
        """Every rank's rows of ``shard``, ordered by read, primary first."""
        parts = [shard_rows(f, shard) for f, held in zip(self.files, self.holds) if shard in held]
        if not parts:
            return empty_columns()
        cols = {k: np.concatenate([p[k] for p in parts]) for k in COLUMNS}
        order = np.lexsort((-cols["primary"].astype(np.int64), cols["read"]))
        return {k: v[order] for k, v in cols.items()}

    def shards(self) -> set[int]:
        return set().union(*self.holds) if self.holds else set()

    def close(self) -> None:
        for f in self.files:
            f.close()


def load_rank_columns(outputs: AlignOutputs) -> dict[str, np.ndarray]:
    """Every rank's rows (of this attempt), ordered by (shard, read), primary first (tests)."""
    ranks = RankOutputs(outputs)
    try:
        parts = [ranks.shard(s) for s in sorted(ranks.shards())]
    finally:
        ranks.close()
    return {k: np.concatenate([p[k] for p in parts]) for k in COLUMNS} if parts else empty_columns()


def check_every_read_once(cols: dict[str, np.ndarray], shard_reads: list[int], where: Path) -> None:
    """Every row names a staged read, and no read has two primary alignments (a read without
    one is reported unmapped), so each input read is in the output exactly once."""
    shard, read = cols["shard"].astype(np.int64), cols["read"].astype(np.int64)
    sizes = np.asarray(shard_reads, dtype=np.int64)
    bad = (shard < 0) | (shard >= sizes.shape[0])
    bad[~bad] = (read[~bad] < 0) | (read[~bad] >= sizes[shard[~bad]])
    if bad.any():
        k = int(np.nonzero(bad)[0][0])
        raise ReconciliationError(f"{where}: an alignment names read {int(read[k])} of shard {int(shard[k])}, "
                                  f"which the manifest does not list ({int(bad.sum())} such rows)")
    base = np.concatenate([[0], np.cumsum(sizes)])
    primaries = np.bincount(base[shard[cols["primary"] == 1]] + read[cols["primary"] == 1], minlength=int(base[-1]))
    if (primaries > 1).any():
        g = int(np.argmax(primaries > 1))
        s = int(np.searchsorted(base, g, side="right") - 1)
        raise ReconciliationError(f"{where}: read {g - int(base[s])} of shard {s} has {int(primaries[g])} primary "
                                  "alignments (a rank output from another attempt?); expected at most one")


def shard_hits(rows: dict[str, np.ndarray], names: list[str], lengths: np.ndarray, tnames: list[str],
               tlens: list[int], mismatch_cost: int) -> list[Hit]:
    """PAF records of one shard's rows; a reverse-strand row has its query span flipped to the
    read. MAPQ comes from the job when it wrote one (pairs), else from the score gap;
    secondary alignments get 0."""
    reverse = rows["strand"].astype(bool)
    qlen = lengths[rows["read"]].astype(np.int64)
    q_start = np.where(reverse, qlen - rows["q_end"], rows["q_start"])
    q_end = np.where(reverse, qlen - rows["q_start"], rows["q_end"])
    primary = rows["primary"].astype(bool)
    if "mapq" in rows:
        mapq = np.where(primary, rows["mapq"], 0).tolist()
    else:
        mapq = [mapq_from_scores(b, s, mismatch_cost) if p else 0
                for b, s, p in zip(rows["score"].tolist(), rows["second"].tolist(), primary.tolist())]
    tstart = (rows["wstart"] + rows["r_start"]).tolist()
    tend = (rows["wstart"] + rows["r_end"]).tolist()
    return [
        Hit(names[rd], ql, qs, qe, "-" if rv else "+", tnames[ct], tlens[ct], ts, te, nmatch, block, mq, sc, nm, cg, pr)
        for rd, ql, qs, qe, rv, ct, ts, te, nmatch, block, mq, sc, nm, cg, pr in zip(
            rows["read"].tolist(), qlen.tolist(), q_start.tolist(), q_end.tolist(), reverse.tolist(),
            rows["contig"].tolist(), tstart, tend, rows["nmatch"].tolist(), rows["block"].tolist(), mapq,
            rows["score"].tolist(), rows["nm"].tolist(), rows["cigar"].tolist(), primary.tolist())
    ]


def template_length(a: Hit, b: Hit) -> int:
    """SAM's TLEN of ``a`` with mate ``b`` on the same contig: the span of both, positive for
    the leftmost (SAM: the mate with the smaller 5'... leftmost start; ties: the forward one)."""
    span = max(a.tend, b.tend) - min(a.tstart, b.tstart)
    first = (a.tstart, a.strand == "-") <= (b.tstart, b.strand == "-")
    return span if first else -span


def mate_of(own: Hit | None, other: Hit | None, number: int, proper: bool) -> Mate:
    if other is None:
        return Mate(number, None, 0, False, False, 0)
    tlen = template_length(own, other) if own is not None and own.tname == other.tname else 0
    return Mate(number, other.tname, other.tstart, other.strand == "-", proper, tlen)


@dataclass
class _Shard:
    """One shard's reads and alignments, grouped by read."""

    names: list[str]
    seqs: list[bytes]
    quals: list[bytes | None]
    by_read: list[list[Hit]] = field(default_factory=list)
    proper: np.ndarray | None = None


def _load_shard(arrays, rows: dict[str, np.ndarray], tnames, tlens, mismatch_cost) -> _Shard:
    enc = EncodedShard.from_arrays(arrays)
    seqs = decode_sequences(enc)
    if enc.quals is not None:
        q = enc.quals.tobytes()
        quals = [q[o:o + n] for o, n in zip(enc.offsets.tolist(), enc.lengths.tolist())]
    else:
        quals = [None] * len(seqs)
    hits = shard_hits(rows, enc.names, enc.lengths, tnames, tlens, mismatch_cost)
    by_read: list[list[Hit]] = [[] for _ in seqs]
    for rd, h in zip(rows["read"].tolist(), hits):
        by_read[rd].append(h)
    proper = np.zeros(len(seqs), dtype=bool)
    if "proper" in rows:
        proper[rows["read"][rows["primary"] == 1]] = rows["proper"][rows["primary"] == 1].astype(bool)
    return _Shard(enc.names, seqs, quals, by_read, proper)


def _sam_lines(shard: _Shard, mates: int, rg: str) -> list[str]:
    out: list[str] = []
    n = len(shard.names)
    for i in range(n):
        hits = shard.by_read[i]
        if mates == 2:
            j = i ^ 1
            own, other = (hits[0] if hits else None), (shard.by_read[j][0] if shard.by_read[j] else None)
            mate = mate_of(own, other, 1 + (i & 1), bool(shard.proper[i]))
            out.extend(sam_records(shard.names[i], shard.seqs[i], shard.quals[i], hits, rg, mate,
                                   other if own is None else None))
        else:
            out.extend(sam_records(shard.names[i], shard.seqs[i], shard.quals[i], hits, rg))
    return out


def write_results(manifest_path: Path, outputs: AlignOutputs, output_dir: str, sam: bool = False,
                  staged: StagedRun | None = None, spec: SampleOutputs | None = None) -> dict:
    """Write the sample's PAF, BAM (+ .bai), SAM when asked and summary JSON under
    ``output_dir`` (names from ``spec``); return the summary. Every input read is counted
    once, mapped or unmapped; with ``staged``, the manifest must be the one staged."""
    spec = spec or SampleOutputs(sam=sam)
    manifest = staged.verify() if staged else load_manifest(Path(manifest_path))
    root = Path(manifest_path).parent
    ref = read_genome_json(verify_entry(root, manifest["reference"]).parent)
    tnames, tlens = [str(n) for n in ref["names"]], [int(x) for x in ref["lengths"]]
    scoring = manifest_settings(manifest).scoring
    entries = manifest["shards"]
    sizes = [int(s["reads"]) for s in entries]
    out = Path(output_dir).resolve()
    paths = spec.paths(out)
    group = spec.group()
    header = sam_header(tnames, tlens, group, spec.version, spec.command_line)
    qc, accuracy = QcCounter(), AccuracyCounter()
    with ExitStack() as stack:  # on an error every file is removed, none is left half-written
        ranks = RankOutputs(outputs)
        stack.callback(ranks.close)
        stray = sorted(s for s in ranks.shards() if not 0 <= s < len(entries))
        if stray:
            raise ReconciliationError(f"{outputs.dir}: rank outputs hold rows of shard {stray[0]}, which the "
                                      f"manifest does not list (it lists {len(entries)})")
        paf = stack.enter_context(atomic_stream(paths["paf"]))
        bam = stack.enter_context(SortedBamWriter(paths["bam"], header.replace("SO:unsorted", "SO:coordinate"),
                                                  spec.threads)) if spec.bam else None
        sam_fh = stack.enter_context(atomic_stream(paths["sam"])) if spec.sam else None
        if sam_fh:
            sam_fh.write(header.encode())
        for s, entry in enumerate(entries):
            arrays = load_npz_verified(root, entry)
            mates = int(arrays.get("mates", 1))
            if spec.bam and "quals_z" not in arrays:
                raise ValueError(f"shard {s} holds no base qualities (FASTA reads, or qualities switched off); "
                                 "a BAM needs them: give FASTQ reads, or switch BAM off")
            rows = ranks.shard(s)
            check_every_read_once(rows, sizes, outputs.dir)
            shard = _load_shard(arrays, rows, tnames, tlens, scoring.match - scoring.mismatch)
            paf.write("".join(h.paf_line() + "\n" for hs in shard.by_read for h in hs).encode())
            qc.add_rows(rows, len(shard.names), shard.proper, mates)
            accuracy.add_rows(rows, shard.names, arrays["lengths"], tnames, mates)
            if bam or sam_fh:
                lines = _sam_lines(shard, mates, group.id)
                if bam:
                    bam.write(lines)
                if sam_fh:
                    sam_fh.write("".join(lines).encode())
    counts = qc.result()
    summary = {
        "sample": spec.sample,
        "reads": counts["reads"],
        "mapped": counts["primary_mapped"],
        "unmapped": counts["reads"] - counts["primary_mapped"],
        "secondary": counts["secondary"],
        "paf": str(paths["paf"]),
        "bam": str(paths["bam"]) if spec.bam else None,
        "sam": str(paths["sam"]) if spec.sam else None,
        "summary": str(paths["summary"]),
        "staging": str(root),
        "qc": counts,
        "accuracy": accuracy.result(),
    }
    atomic_write_text(paths["summary"], json.dumps(summary, indent=2))
    return summary
