"""Coordinate-sorted, indexed BAM from SAM text written in pieces (samtools sort and index,
through pysam): memory stays bounded whatever the read count, as samtools sort spills to
temp files past its per-thread budget."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hpc.files import FILE_MODE


class BamWriteError(RuntimeError):
    """samtools could not sort or index the alignments."""


class SortedBamWriter:
    """``with SortedBamWriter(path, header) as bam: bam.write(sam_lines)``: the lines go to a
    temp SAM file beside ``path``; on a clean exit they are sorted into ``path`` and indexed
    (``path.bai``), each through a temp file and a rename; on an error nothing is left."""

    def __init__(self, path: Path, header: str, threads: int = 2, memory_mb: int = 256, level: int = 1) -> None:
        self.path = Path(path)
        self.level = level  # deflate level: 1 writes in about half the time of samtools' 6, files ~30% larger
        self.header = header
        self.threads = max(1, threads)
        self.memory_mb = memory_mb
        self.records = 0

    def __enter__(self) -> "SortedBamWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._scratch = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent))
        self._sam = open(self._scratch / "unsorted.sam", "w", encoding="utf-8", newline="\n")
        self._sam.write(self.header)
        return self

    def write(self, lines: list[str]) -> None:
        self._sam.writelines(lines)
        self.records += len(lines)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._sam.close()
        try:
            if exc_type is None:
                self._sort_and_index()
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _sort_and_index(self) -> None:
        import pysam

        bam, bai = self._scratch / "sorted.bam", self._scratch / "sorted.bam.bai"
        try:
            pysam.sort("--no-PG", "-l", str(self.level), "-@", str(self.threads), "-m", f"{self.memory_mb}M", "-T", str(self._scratch / "part"),
                       "-O", "bam", "-o", str(bam), str(self._sam.name))
            pysam.index(str(bam), str(bai))
        except pysam.utils.SamtoolsError as exc:
            raise BamWriteError(f"{self.path}: samtools could not sort or index the alignments: {exc}") from exc
        for src, dst in ((bam, self.path), (bai, Path(f"{self.path}.bai"))):  # the scratch is beside them
            os.chmod(src, FILE_MODE)
            os.replace(src, dst)
