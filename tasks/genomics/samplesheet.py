"""Samples of a run: an nf-core-style samplesheet (``sample,fastq_1,fastq_2``) or the one
sample of ``--reads``. Pure parsing and checks; every error names the file, the line and
what was expected."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

REQUIRED = ("sample", "fastq_1", "fastq_2")
OPTIONAL = ("library", "platform")  # the read group's LB and PL; the sample's name is SM and ID


class SamplesheetError(ValueError):
    """A samplesheet that cannot be used; names the file and the line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path, self.line, self.message = str(path), line, message
        super().__init__(f"{path}:{line}: {message}" if line is not None else f"{path}: {message}")

    def __reduce__(self):
        return type(self), (self.path, self.line, self.message)


@dataclass(frozen=True)
class SampleSpec:
    """One sample: its name (free text: it becomes @RG SM; file names use a safe form of
    it), its reads (``fastq_2`` None: single-end, or interleaved pairs when ``interleaved``)."""

    name: str
    fastq_1: str
    fastq_2: str | None = None
    interleaved: bool = False
    library: str | None = None
    platform: str = "ILLUMINA"
    line: int | None = None  # where the samplesheet gave it

    @property
    def paired(self) -> bool:
        return self.fastq_2 is not None or self.interleaved


_SUFFIXES = re.compile(r"(\.(fastq|fq|fasta|fa|fna|txt))?(\.(gz|bgz))?$", re.IGNORECASE)
_MATE = re.compile(r"([._-]R?1(_001)?)$", re.IGNORECASE)


def sample_name_from_path(path: str, paired: bool = False) -> str:
    """A sample name for ``--reads``: the file name without its format and compression
    suffixes (and, for R1 of a pair, without ``_R1``/``_1``)."""
    name = _SUFFIXES.sub("", Path(path.rstrip("/")).name) or "sample"
    return (_MATE.sub("", name) or name) if paired else name


def safe_file_stem(name: str) -> str:
    """A sample name as a file name: characters other than letters, digits, ``.``, ``_``
    and ``-`` become ``_`` (``/`` and spaces included); never empty or hidden."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return stem or "sample"


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _local(uri: str) -> Path:
    return Path(uri[len("file://"):]) if uri.startswith("file://") else Path(uri)


def parse_samplesheet(text: str, path: str, base: Path | None = None, check_files: bool = True) -> list[SampleSpec]:
    """The samples of a samplesheet's text. Columns: ``sample,fastq_1,fastq_2`` (in any
    order; ``fastq_2`` may be empty for single-end), optionally ``library`` and ``platform``.
    Relative local paths are taken from ``base`` (the samplesheet's folder). Refused, with
    the line: an unknown or missing column, an empty sample or fastq_1, a duplicate sample,
    a local file that does not exist (``check_files``), the same file twice in a row."""
    rows = list(csv.reader(io.StringIO(text)))
    lines = [i + 1 for i, r in enumerate(rows) if any(c.strip() for c in r)]
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise SamplesheetError(path, None, f"is empty; expected a header line {','.join(REQUIRED)}")
    header = [c.strip() for c in rows[0]]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise SamplesheetError(path, lines[0], f"unknown column {unknown[0]!r}; expected the columns "
                               f"{', '.join(REQUIRED)} (and optionally {', '.join(OPTIONAL)})")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SamplesheetError(path, lines[0], f"missing column {missing[0]!r}; expected the columns "
                               f"{', '.join(REQUIRED)}")
    if len(set(header)) != len(header):
        raise SamplesheetError(path, lines[0], "a column is named twice")
    samples: list[SampleSpec] = []
    seen: dict[str, int] = {}
    for line, row in zip(lines[1:], rows[1:]):
        if len(row) != len(header):
            raise SamplesheetError(path, line, f"has {len(row)} fields; expected {len(header)} ({','.join(header)})")
        cells = {k: v.strip() for k, v in zip(header, row)}
        name = cells["sample"]
        if not name:
            raise SamplesheetError(path, line, "the sample column is empty; expected a sample name")
        if any(ord(c) < 32 for c in name):
            raise SamplesheetError(path, line, "the sample name holds a control character; expected printable text")
        if name in seen:
            raise SamplesheetError(path, line, f"sample {name!r} is listed again (first on line {seen[name]}); "
                                   "expected each sample once (give one sample several runs as one pair of files)")
        seen[name] = line
        files = []
        for column in ("fastq_1", "fastq_2"):
            uri = cells[column]
            if not uri:
                if column == "fastq_1":
                    raise SamplesheetError(path, line, "fastq_1 is empty; expected the reads file (or R1 of a pair)")
                files.append(None)
                continue
            if _is_local(uri):
                local = _local(uri)
                if not local.is_absolute() and base is not None:
                    local = base / local
                if check_files and not local.is_file():
                    raise SamplesheetError(path, line, f"{column} {uri!r}: file not found ({local})")
                uri = str(local)
            files.append(uri)
        if files[1] is not None and files[0] == files[1]:
            raise SamplesheetError(path, line, "fastq_1 and fastq_2 are the same file; expected R1 and R2")
        samples.append(SampleSpec(name, files[0], files[1], library=cells.get("library") or None,
                                  platform=cells.get("platform") or "ILLUMINA", line=line))
    if not samples:
        raise SamplesheetError(path, lines[0], "lists no samples; expected a line per sample after the header")
    return samples


def file_stems(samples: list[SampleSpec]) -> list[str]:
    """Output file stems, one per sample: a safe form of its name, made unique (``a/b`` and
    ``a_b`` would otherwise both be ``a_b``) by the sample's line number."""
    stems = [safe_file_stem(s.name) for s in samples]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    return [f"{stem}_{i + 1}" if counts[stem] > 1 else stem for i, stem in enumerate(stems)]
