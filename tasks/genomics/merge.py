"""Merge the ranks' alignment columns into a sample's files, one shard at a time: PAF,
coordinate-sorted BAM (+ index) and, on request, SAM; the QC counts and the accuracy when
read names carry the truth. Memory: the ranks' numeric columns plus one shard's records."""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hpc.rank_output import COLUMNS, empty_columns, rank_shards, shard_rows
from hpc.files import atomic_stream, atomic_write_text
from hpc.genome import read_genome_json
from hpc.codec import unpack_codes, unpack_range
from hpc.process import release_free_memory
from hpc.manifest import ManifestError, StagedRun, load_manifest, load_npz_verified, verify_entry
from hpc.run_folder import AlignOutputs
from tasks.genomics.bam import SortedBamWriter
from tasks.genomics.encoding import QualityStream, decompress_quals, name_array, shard_mates, text_rows
from tasks.genomics.paf import AccuracyCounter
from tasks.genomics.qc import QcCounter
from tasks.genomics.samplesheet import safe_file_stem
from tasks.genomics.records import ShardReads, bam_slices, paf_text_of, proper_reads, sam_bytes
from tasks.genomics.sam import ReadGroup, sam_header


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
    key = base[shard[cols["primary"] == 1]] + read[cols["primary"] == 1]
    if not key.size:
        return
    low = int(key.min())  # counts over the span of these rows' reads (one shard's), not over the run's
    primaries = np.bincount(key - low)
    if (primaries > 1).any():
        g = int(np.argmax(primaries > 1)) + low
        s = int(np.searchsorted(base, g, side="right") - 1)
        raise ReconciliationError(f"{where}: read {g - int(base[s])} of shard {s} has {int(primaries[g - low])} "
                                  "primary alignments (a rank output from another attempt?); expected at most one")


BASES = ("packed", "nmask", "quals_z")  # a staged shard's arrays that hold its bases and qualities


def shard_reads(arrays, bases: bool = True) -> ShardReads:
    """A staged shard's reads as the SAM and PAF writers take them; without ``bases``, no
    base codes or qualities (the PAF, QC and accuracy need none: :func:`with_bases` adds them)."""
    reads = ShardReads(text_rows(arrays["names"]), np.asarray(arrays["lengths"], dtype=np.int64),
                       np.asarray(arrays["offsets"], dtype=np.int64), np.empty(0, dtype=np.uint8), None,
                       shard_mates(arrays))
    return with_bases(reads, arrays) if bases else reads


def with_bases(reads: ShardReads, arrays) -> ShardReads:
    """``reads`` with the base codes and qualities of the shard's ``arrays`` (:data:`BASES`)."""
    n_bases = int(reads.lengths.sum())
    quals = decompress_quals(arrays["quals_z"], n_bases) if "quals_z" in arrays else None
    return replace(reads, codes=unpack_codes(arrays["packed"], arrays["nmask"], n_bases), quals=quals)


class SliceBases:
    """A staged shard's base codes and qualities (its :data:`BASES` arrays), decoded a slice
    at a time, front to back, as :func:`bam_slices` asks: one slice's bases in memory, never
    the shard's (a 1M-read shard's are 300 MB)."""

    def __init__(self, arrays: dict[str, np.ndarray], n_bases: int) -> None:
        self.packed, self.nmask, self.n_bases = arrays["packed"], arrays["nmask"], n_bases
        self.quals = QualityStream(arrays["quals_z"]) if "quals_z" in arrays else None

    def __call__(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray | None]:
        quals = self.quals.take(end - start) if self.quals else None
        if self.quals and end == self.n_bases:
            self.quals.check_done()
        return unpack_range(self.packed, self.nmask, start, end), quals


def _bam_of_shard(rows: dict[str, np.ndarray], reads: ShardReads, arrays: dict, rg: str | None):
    """:func:`bam_slices` of a shard, each slice's bases decoded as it is made, on the BAM
    writer's thread."""
    return bam_slices(rows, reads, rg, bases=SliceBases(arrays, int(reads.lengths.sum())))


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
    entries = manifest["shards"]
    sizes = [int(s["reads"]) for s in entries]
    out = Path(output_dir).resolve()
    paths = spec.paths(out)
    group = spec.group()
    header = sam_header(tnames, tlens, group, spec.version, spec.command_line)
    tname_rows, tlen_arr = text_rows(name_array(tnames)), np.array(tlens)
    qc, accuracy = QcCounter(), AccuracyCounter()
    with ExitStack() as stack:  # on an error every file is removed, none is left half-written
        ranks = RankOutputs(outputs)
        stack.callback(ranks.close)
        stray = sorted(s for s in ranks.shards() if not 0 <= s < len(entries))
        if stray:
            raise ReconciliationError(f"{outputs.dir}: rank outputs hold rows of shard {stray[0]}, which the "
                                      f"manifest does not list (it lists {len(entries)})")
        paf = stack.enter_context(atomic_stream(paths["paf"]))
        expected = sum(int(e["reads"]) * 64 + int(e.get("bases", 0)) * 3 // 2 for e in entries)  # BAM bytes, about
        bam = stack.enter_context(SortedBamWriter(paths["bam"], header.replace("SO:unsorted", "SO:coordinate"),
                                                  tnames, tlens, spec.threads, expected_bytes=expected)) \
            if spec.bam else None
        sam_fh = stack.enter_context(atomic_stream(paths["sam"])) if spec.sam else None
        if sam_fh:
            sam_fh.write(header.encode())
        for s, entry in enumerate(entries):
            arrays = load_npz_verified(root, entry)
            if spec.bam and "quals_z" not in arrays:
                raise ValueError(f"shard {s} holds no base qualities (FASTA reads, or qualities switched off); "
                                 "a BAM needs them: give FASTQ reads, or switch BAM off")
            rows = ranks.shard(s)
            check_every_read_once(rows, sizes, outputs.dir)
            reads = shard_reads(arrays, bases=spec.sam)
            packed = {k: arrays[k] for k in BASES if k in arrays}
            del arrays
            if bam:  # decoded and made on the writer's thread while this one writes the PAF and counts
                bam.submit(_bam_of_shard, rows, reads, packed, group.id)
            del packed
            paf.write(paf_text_of(rows, reads, tname_rows, tlen_arr))
            qc.add_rows(rows, reads.n, proper_reads(rows, reads.n), reads.mates)
            if accuracy.known:
                accuracy.add_rows(rows, reads.names, reads.lengths, tnames, reads.mates)
            if sam_fh:
                sam_fh.write(sam_bytes(rows, reads, tname_rows, group.id)[0])
            del rows, reads  # before the next shard is loaded
            release_free_memory()
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
