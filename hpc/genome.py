"""The reference as every process reads it: 2-bit packed bases, a 1-bit N mask and a contig
table, as flat files that the seeders and the align job's ranks memory-map (one copy in the
page cache per node, however many processes), never load or unpickle.

A genome folder holds::

    packed.bin    4 bases a byte, first base in the high bits; N packed as A under the mask
    nmask.bin     1 bit a base (``np.packbits`` order), set where the base is N
    genome.json   names, lengths, and each file's size and sha256; written last

Contigs are concatenated: contig ``i`` starts at ``starts[i]``, the sum of the lengths
before it. Readers check the sizes; the sha256s are checked where the folder is adopted
(the index cache), not by every rank.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpc.codec import pack_codes
from hpc.files import atomic_stream, atomic_write_text

GENOME_JSON = "genome.json"
PACKED = "packed.bin"
NMASK = "nmask.bin"
GENOME_VERSION = 1
# BAM stores positions as int32, so no contig may be longer (samtools has the same limit).
MAX_CONTIG = 2**31 - 1


class GenomeError(RuntimeError):
    """A genome folder is missing a file or its files disagree with genome.json."""


@dataclass
class Genome:
    names: list[str]
    lengths: np.ndarray  # int64 per contig
    packed: np.ndarray  # uint8, (total + 3) // 4
    nmask: np.ndarray  # uint8, (total + 7) // 8

    @property
    def starts(self) -> np.ndarray:
        starts = np.zeros(len(self.lengths), dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=starts[1:])
        return starts

    @property
    def total(self) -> int:
        return int(self.lengths.sum())

    def codes(self, start: int, end: int) -> np.ndarray:
        """Base codes of global positions ``start .. end`` (numpy; for tests and small windows)."""
        from hpc.kernels.packed import unpack_range

        out = np.empty(max(end - start, 0), dtype=np.uint8)
        unpack_range(self.packed, self.nmask, start, out)
        return out


def packed_sizes(total: int) -> dict[str, int]:
    return {PACKED: (total + 3) // 4, NMASK: (total + 7) // 8}


def genome_from_codes(names: list[str], contig_codes: list[np.ndarray]) -> Genome:
    """An in-memory genome (tests, benchmarks, small references)."""
    lengths = np.array([c.shape[0] for c in contig_codes], dtype=np.int64)
    codes = np.concatenate(contig_codes) if contig_codes else np.zeros(0, np.uint8)
    packed, nmask = pack_codes(codes)
    return Genome(list(names), lengths, packed[: (codes.shape[0] + 3) // 4], nmask)


def write_genome_json(folder: Path, names: list[str], lengths: list[int], files: dict[str, dict]) -> Path:
    path = Path(folder) / GENOME_JSON
    atomic_write_text(path, json.dumps({"version": GENOME_VERSION, "names": names, "lengths": lengths,
                                        "files": files}, indent=1))
    return path


def read_genome_json(folder: Path) -> dict:
    path = Path(folder) / GENOME_JSON
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise GenomeError(f"{path}: not found (the reference was not packed, or packing did not finish)") from exc
    except json.JSONDecodeError as exc:
        raise GenomeError(f"{path}: not valid JSON ({exc})") from exc
    if body.get("version") != GENOME_VERSION:
        raise GenomeError(f"{path}: field 'version' is {body.get('version')!r}, expected {GENOME_VERSION}")
    return body


def open_genome(folder: str | Path) -> Genome:
    """The genome in ``folder``, memory-mapped read-only, after checking every file's size."""
    folder = Path(folder)
    body = read_genome_json(folder)
    lengths = np.array(body["lengths"], dtype=np.int64)
    expected = packed_sizes(int(lengths.sum()))
    arrays = {}
    for name, size in expected.items():
        path = folder / name
        actual = path.stat().st_size if path.is_file() else None
        if actual != size or body["files"][name]["bytes"] != size:
            raise GenomeError(f"{path}: {actual if actual is not None else 'no file'} bytes, expected {size} "
                              f"for {int(lengths.sum())} bases")
        arrays[name] = np.memmap(path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
    return Genome([str(n) for n in body["names"]], lengths, arrays[PACKED], arrays[NMASK])


def save_genome(folder: str | Path, genome: Genome) -> Path:
    """Write an in-memory genome as a genome folder (genome.json last); returns genome.json."""
    files = {}
    for name, array in ((PACKED, genome.packed), (NMASK, genome.nmask)):
        data = np.ascontiguousarray(array).tobytes()
        with atomic_stream(Path(folder) / name) as fh:
            fh.write(data)
        files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return write_genome_json(Path(folder), genome.names, [int(x) for x in genome.lengths], files)


def link_genome(source: str | Path, folder: str | Path) -> Path:
    """Place the genome of ``source`` in ``folder`` by hard links (a copy across file
    systems); genome.json last. Returns ``folder``'s genome.json."""
    source, folder = Path(source), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (PACKED, NMASK, GENOME_JSON):
        target = folder / name
        if target.exists() and os.path.samefile(source / name, target):
            continue  # linked by an earlier attempt (rename onto the same file would do nothing)
        tmp = folder / f".{name}.link.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.link(source / name, tmp)
        except OSError:
            shutil.copyfile(source / name, tmp)
        os.replace(tmp, target)
    return folder / GENOME_JSON
