"""Reads with Illumina's own error profiles: ART (Debian's art-nextgen-simulation-tools,
installed by ``make test-deps``) simulates pairs from its built-in empirical profiles
(``HS25``: HiSeq 2500, 150 bp; ``MSv3``: MiSeq v3, up to 250 bp), with quality-dependent
substitutions and the platform's insertions and deletions, unlike dwgsim's uniform error
ramp. ART names reads ``<contig>-<n>/1`` and writes where each came from in a SAM of its
own: :func:`art_truth` reads that, so accuracy is scored against it (paftools' rule)."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

from tasks.genomics.paf import Truth

_SPAN = re.compile(rb"(\d+)([MDN=X])")  # the CIGAR operations that move along the reference


def simulate_art(reference: Path, work: Path, pairs: int, profile: str = "HS25", length: int = 150,
                 insert: tuple[int, int] = (350, 35), seed: int = 7) -> dict[str, Path]:
    """``pairs`` ART pairs from ``reference`` (one FASTA contig or several: ART draws ``pairs``
    from each, so give it one genome's worth), gzipped R1/R2 and ART's truth SAM, kept between
    runs under ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    prefix = work / f"art-{profile}-{length}-{pairs}"
    out = {"r1": Path(f"{prefix}_1.fq.gz"), "r2": Path(f"{prefix}_2.fq.gz"), "truth": Path(f"{prefix}.sam")}
    if all(p.is_file() for p in out.values()):
        return out
    art = shutil.which("art_illumina")
    if art is None:
        raise SystemExit("art_illumina is missing: run `make test-deps` (Debian's art-nextgen-simulation-tools)")
    raw = work / f"art-{profile}-{length}-{pairs}-"
    subprocess.run([art, "-ss", profile, "-i", str(reference), "-p", "-l", str(length), "-c", str(pairs),
                    "-m", str(insert[0]), "-s", str(insert[1]), "-rs", str(seed), "-sam", "-na", "-o", str(raw)],
                   check=True, capture_output=True)
    for mate in (1, 2):
        fq = Path(f"{raw}{mate}.fq")
        with open(fq, "rb") as src, gzip.open(f"{out[f'r{mate}']}.tmp", "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        Path(f"{out[f'r{mate}']}.tmp").replace(out[f"r{mate}"])
        fq.unlink()
    Path(f"{raw}.sam").replace(out["truth"])
    return out


def art_truth(sam: Path) -> dict[tuple[str, int], Truth]:
    """Each read's origin from ART's SAM, keyed by ``(name without /1 or /2, mate)`` (mate 0:
    a single-end read, as :func:`bench.ecoli.score_sam` asks for it): contig,
    0-based start, end (from the CIGAR), strand. Read as text: ART's CIGARs count the bases of
    its indels in ways samtools' parser rejects (a ``151=`` on a 150-bp read)."""
    truth: dict[tuple[str, int], Truth] = {}
    with open(sam, "rb") as fh:
        for no, line in enumerate(fh, 1):
            if line.startswith(b"@"):
                continue
            f = line.split(b"\t", 6)
            if len(f) < 7:
                raise ValueError(f"{sam}:{no}: expected a SAM record of at least 7 fields, got {len(f)}")
            flag, pos = int(f[1]), int(f[3]) - 1
            span = sum(int(n) for n, _ in _SPAN.findall(f[5]))
            name = f[0].decode().rsplit("/", 1)[0] if f[0][-2:] in (b"/1", b"/2") else f[0].decode()
            truth[(name, 1 if flag & 64 else 2 if flag & 128 else 0)] = Truth(f[2].decode(), pos, pos + span, "-" if flag & 16 else "+",
                                                         False)
    return truth
