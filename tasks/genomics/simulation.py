"""Simulated reference and reads with known origin (wgsim-style names), for tests and demos.

A read's name is ``{contig}_{start}_{end}_{strand}_{index}``: 1-based start and inclusive
end of the reference span it was sampled from, and the strand it was read from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpc.codec import reverse_complement
from tasks.genomics.encoding import to_bytes, to_codes


@dataclass(frozen=True)
class SimulatedRead:
    name: str
    seq: bytes


def simulate_reference(n_contigs: int, contig_length: int, seed: int, *, repeat_fraction: float = 0.0,
                       repeat_length: int = 2000, repeat_divergence: float = 0.02, n_runs: int = 0,
                       n_run_length: int = 200) -> list[tuple[str, bytes]]:
    """Random contigs ``chr1..chrN``; optionally with diverged repeats and runs of N.

    Repeats copy random segments of ``repeat_length`` over other places, with
    ``repeat_divergence`` substitutions, until about ``repeat_fraction`` of the genome is a
    copy; ``n_runs`` runs of N are then written at random places.
    """
    if n_contigs < 1 or contig_length < 1:
        raise ValueError(f"need n_contigs >= 1 and contig_length >= 1, got {n_contigs}, {contig_length}")
    if not 0 <= repeat_fraction < 1 or not 0 <= repeat_divergence < 1:
        raise ValueError(f"need 0 <= repeat_fraction, repeat_divergence < 1, got {repeat_fraction}, {repeat_divergence}")
    rng = np.random.default_rng(seed)
    contigs = [rng.integers(0, 4, contig_length, dtype=np.uint8) for _ in range(n_contigs)]
    span = min(repeat_length, contig_length)
    for _ in range(int(repeat_fraction * n_contigs * contig_length / span)):
        src, dst = rng.integers(0, n_contigs, 2)
        a, b = rng.integers(0, contig_length - span + 1, 2)
        copy = contigs[src][a : a + span].copy()
        subs = rng.random(span) < repeat_divergence
        copy[subs] = (copy[subs] + rng.integers(1, 4, int(subs.sum()), dtype=np.uint8)) % 4
        contigs[dst][b : b + span] = copy
    for _ in range(n_runs):
        c = int(rng.integers(0, n_contigs))
        start = int(rng.integers(0, max(1, contig_length - n_run_length)))
        contigs[c][start : start + n_run_length] = 4
    return [(f"chr{i + 1}", to_bytes(codes)) for i, codes in enumerate(contigs)]


def _mutate(segment: np.ndarray, length: int, sub_rate: float, indel_rate: float, rng) -> tuple[np.ndarray, int]:
    """Read of ``length`` bases copied from ``segment`` with errors; returns it and the span used."""
    n = segment.shape[0]
    event = rng.random(n)
    insert = event < indel_rate / 2
    delete = (event >= indel_rate / 2) & (event < indel_rate)
    emit = np.stack([rng.integers(0, 4, n, dtype=np.uint8), segment], axis=1)
    mask = np.stack([insert, ~delete], axis=1)
    rows = np.nonzero(mask)[0]
    out = emit[mask][:length].copy()
    span = int(rows[length - 1]) + 1
    subs = rng.random(length) < sub_rate
    out[subs] = (out[subs] + rng.integers(1, 4, int(subs.sum()), dtype=np.uint8)) % 4
    return out, span


def simulate_reads(
    reference: list[tuple[str, bytes]],
    n_reads: int,
    read_length: int,
    sub_rate: float,
    indel_rate: float,
    seed: int,
) -> list[SimulatedRead]:
    """Reads from both strands; contigs chosen in proportion to their length."""
    if not 0 <= sub_rate < 1 or not 0 <= indel_rate < 0.5:
        raise ValueError(f"rates out of range: sub_rate={sub_rate}, indel_rate={indel_rate}")
    pad = max(8, int(read_length * indel_rate * 8) + 8)
    usable = [(name, seq) for name, seq in reference if len(seq) >= read_length + pad]
    if not usable:
        raise ValueError(f"no contig is longer than read_length + {pad} = {read_length + pad} bases")
    codes = [to_codes(seq) for _, seq in usable]
    weights = np.array([c.shape[0] - read_length - pad + 1 for c in codes], dtype=np.float64)
    rng = np.random.default_rng(seed)
    contig_idx = rng.choice(len(codes), size=n_reads, p=weights / weights.sum())
    reads = []
    for i, c in enumerate(contig_idx.tolist()):
        contig = codes[c]
        start = int(rng.integers(0, contig.shape[0] - read_length - pad + 1))
        read, span = _mutate(contig[start : start + read_length + pad], read_length, sub_rate, indel_rate, rng)
        strand = "+"
        if rng.random() < 0.5:
            read, strand = reverse_complement(read), "-"
        name = f"{usable[c][0]}_{start + 1}_{start + span}_{strand}_{i}"
        reads.append(SimulatedRead(name, to_bytes(read)))
    return reads


def fasta_text(records: list[tuple[str, bytes]], width: int = 80) -> str:
    lines = []
    for name, seq in records:
        lines.append(f">{name}")
        text = seq.decode("ascii")
        lines.extend(text[i : i + width] for i in range(0, len(text), width))
    return "\n".join(lines) + "\n"


def fastq_text(reads: list[SimulatedRead]) -> str:
    return "".join(f"@{r.name}\n{r.seq.decode('ascii')}\n+\n{'I' * len(r.seq)}\n" for r in reads)
