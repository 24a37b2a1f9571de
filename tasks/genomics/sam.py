"""SAM text for the alignments (primary and secondary) and unmapped reads that collect writes."""

from __future__ import annotations

from hpc.codec import reverse_complement
from tasks.genomics.encoding import to_bytes, to_codes
from tasks.genomics.paf import Hit

FLAG_UNMAPPED = 4
FLAG_REVERSE = 16
FLAG_SECONDARY = 256


def sam_header(names: list[str], lengths: list[int]) -> str:
    lines = ["@HD\tVN:1.6\tSO:unsorted"]
    lines += [f"@SQ\tSN:{n}\tLN:{length}" for n, length in zip(names, lengths)]
    lines.append("@PG\tID:helixflow\tPN:helixflow")
    return "\n".join(lines) + "\n"


def sam_records(name: str, seq: bytes, hits: list[Hit]) -> list[str]:
    """A read's SAM lines: one unmapped line without hits, else primary first then secondaries."""
    return [sam_record(name, seq, h) for h in hits] if hits else [sam_record(name, seq, None)]


def sam_record(name: str, seq: bytes, hit: Hit | None) -> str:
    """One SAM line; the unaligned ends of a mapped read are soft-clipped. A secondary line
    carries no sequence (``*``), as the SAM spec allows."""
    if hit is None:
        return f"{name}\t{FLAG_UNMAPPED}\t*\t0\t0\t*\t*\t0\t0\t{seq.decode()}\t*\n"
    if hit.strand == "-":
        seq = to_bytes(reverse_complement(to_codes(seq)))
        left, right = hit.qlen - hit.qend, hit.qstart
    else:
        left, right = hit.qstart, hit.qlen - hit.qend
    cigar = (f"{left}S" if left else "") + hit.cigar + (f"{right}S" if right else "")
    flag = (FLAG_REVERSE if hit.strand == "-" else 0) | (0 if hit.primary else FLAG_SECONDARY)
    text = seq.decode() if hit.primary else "*"
    tags = f"NM:i:{hit.nm}\tAS:i:{hit.score}"
    return (f"{name}\t{flag}\t{hit.tname}\t{hit.tstart + 1}\t{hit.mapq}\t{cigar}\t*\t0\t0\t"
            f"{text}\t*\t{tags}\n")
