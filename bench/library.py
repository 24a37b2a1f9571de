"""The library set of ``make bench-mapping``: pairs as a real short-insert library gives them,
which dwgsim and ART do not make. Fragments of normal(150, 50) bases, 40 to 500 (about half
shorter than the 150-bp read: the read runs on into the TruSeq adapter and then the poly-G a
two-colour instrument reads where no fragment is left), substitutions rising along the read
as dwgsim's (0.2-1% on R1, 0.3-1.5% on R2), and a share of random pairs (contamination, or
adapter dimers' chance bases) that no aligner should place. Names are dwgsim's (both mates'
genomic starts; random pairs on contig ``rand``), so :func:`bench.ecoli.score_sam` scores
them and counts the random reads placed apart."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

ADAPTER_R1 = b"AGATCGGAAGAGCACACGTCTGAACTCCAGTCAC"  # TruSeq, as it reads on from mate 1's fragment end
ADAPTER_R2 = b"AGATCGGAAGAGCGTCGTGTAGGGAAAGAGTGT"
COMPLEMENT = bytes.maketrans(b"ACGT", b"TGCA")
RANDOM_SHARE = 0.02
ERRORS = ((0.002, 0.01), (0.003, 0.015))  # substitution rate at each mate's first and last base


def _first_contig(reference: Path) -> bytes:
    seq, seen = [], False
    with open(reference, "rb") as fh:
        for line in fh:
            if line.startswith(b">"):
                if seen:
                    break
                seen = True
            else:
                seq.append(line.strip().upper())
    return b"".join(seq)


def _with_errors(read: bytes, rng: np.random.Generator, first: float, last: float) -> bytes:
    codes = np.frombuffer(read, dtype=np.uint8).copy()
    hit = rng.random(codes.shape[0]) < np.linspace(first, last, codes.shape[0])
    lut = np.frombuffer(b"ACGT", dtype=np.uint8)
    index = np.searchsorted(lut, codes[hit])  # the read holds only ACGT
    codes[hit] = lut[(index + rng.integers(1, 4, index.shape[0])) % 4]
    return codes.tobytes()


def write_library(reference: Path, work: Path, pairs: int, length: int = 150, seed: int = 11) -> dict[str, Path]:
    """``pairs`` pairs of the reference's first contig as gzipped R1/R2 under ``work`` (kept
    for the next run); returns ``{"reference", "r1", "r2"}``."""
    work.mkdir(parents=True, exist_ok=True)
    out = {"reference": reference, "r1": work / f"library{pairs}.read1.fastq.gz",
           "r2": work / f"library{pairs}.read2.fastq.gz"}
    if out["r1"].is_file() and out["r2"].is_file():
        return out
    genome = _first_contig(reference)
    name = reference.read_bytes()[1:200].split()[0].decode()
    rng = np.random.default_rng(seed)
    tail = b"G" * length
    qual = b"I" * length
    tmp = {m: Path(f"{out[m]}.tmp") for m in ("r1", "r2")}
    with gzip.open(tmp["r1"], "wb", compresslevel=1) as f1, gzip.open(tmp["r2"], "wb", compresslevel=1) as f2:
        for i in range(pairs):
            if rng.random() < RANDOM_SHARE:
                r1, r2 = (bytes(b"ACGT"[x] for x in rng.integers(0, 4, length)) for _ in range(2))
                label = f"rand_0_0_0_0_1_1_0:0:0_0:0:0_{i:x}"
            else:
                size = int(np.clip(rng.normal(150, 50), 40, 500))
                start = int(rng.integers(0, len(genome) - size))
                fragment = genome[start:start + size]
                if fragment.strip(b"ACGT"):
                    continue  # an N or other code in the fragment
                r1 = (fragment + ADAPTER_R1 + tail)[:length]
                r2 = (fragment.translate(COMPLEMENT)[::-1] + ADAPTER_R2 + tail)[:length]
                label = f"{name}_{start + 1}_{start + max(size - length, 0) + 1}_0_1_0_0_0:0:0_0:0:0_{i:x}"
            f1.write(b"@%s/1\n%s\n+\n%s\n" % (label.encode(), _with_errors(r1, rng, *ERRORS[0]), qual))
            f2.write(b"@%s/2\n%s\n+\n%s\n" % (label.encode(), _with_errors(r2, rng, *ERRORS[1]), qual))
    for m in ("r1", "r2"):
        tmp[m].replace(out[m])
    return out
