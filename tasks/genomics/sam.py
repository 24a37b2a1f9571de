"""SAM text that collect writes (and sorts into BAM): the header with read groups and the
program line, and each read's records: primary, secondaries, unmapped reads, and the mate
fields of pairs."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.genomics.paf import Hit

COMPLEMENT_BYTES = bytes.maketrans(b"ACGTN", b"TGCAN")

FLAG_PAIRED = 0x1
FLAG_PROPER = 0x2
FLAG_UNMAPPED = 0x4
FLAG_MATE_UNMAPPED = 0x8
FLAG_REVERSE = 0x10
FLAG_MATE_REVERSE = 0x20
FLAG_FIRST = 0x40
FLAG_LAST = 0x80
FLAG_SECONDARY = 0x100


@dataclass(frozen=True)
class ReadGroup:
    """An ``@RG`` line: ``id`` tags every record of the sample (``RG:Z:``)."""

    id: str
    sample: str
    platform: str = "ILLUMINA"
    library: str | None = None

    def header_line(self) -> str:
        fields = [f"ID:{self.id}", f"SM:{self.sample}", f"LB:{self.library or self.sample}", f"PL:{self.platform}"]
        return "@RG\t" + "\t".join(fields)


def header_value(text: str) -> str:
    """A value as a SAM header field may hold it: no tab or line end (they would end the field)."""
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def sam_header(names: list[str], lengths: list[int], read_group: ReadGroup | None = None, version: str = "",
               command_line: str = "", sort_order: str = "unsorted") -> str:
    lines = [f"@HD\tVN:1.6\tSO:{sort_order}"]
    lines += [f"@SQ\tSN:{n}\tLN:{length}" for n, length in zip(names, lengths)]
    if read_group is not None:
        lines.append(read_group.header_line())
    pg = "@PG\tID:helixflow\tPN:helixflow"
    if version:
        pg += f"\tVN:{header_value(version)}"
    if command_line:
        pg += f"\tCL:{header_value(command_line)}"
    lines.append(pg)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Mate:
    """What a record says of the other read of its pair: which read this is (1 or 2), where
    the mate's primary lies (None: unmapped), whether the pair is proper, and TLEN."""

    number: int
    tname: str | None
    tstart: int  # 0-based
    reverse: bool
    proper: bool
    tlen: int


def sam_records(name: str, seq: bytes, qual: bytes | None, hits: list[Hit], rg: str | None = None,
                mate: Mate | None = None, place: Hit | None = None) -> list[str]:
    """A read's SAM lines: primary first, then secondaries; one unmapped line without hits
    (placed at ``place``, its mate's alignment, when the mate is mapped, as SAM asks)."""
    if not hits:
        return [sam_record(name, seq, qual, None, rg, mate, place)]
    return [sam_record(name, seq, qual, h, rg, mate) for h in hits]


def sam_record(name: str, seq: bytes, qual: bytes | None, hit: Hit | None, rg: str | None = None,
               mate: Mate | None = None, place: Hit | None = None) -> str:
    """One SAM line; the unaligned ends of a mapped read are soft-clipped. A secondary line
    carries the sequence and qualities too: the SAM spec allows ``*`` there, but Picard's
    strict validation then cannot check its NM."""
    flag = 0
    rnext, pnext, tlen = "*", 0, 0
    if mate is not None:
        flag |= FLAG_PAIRED | (FLAG_FIRST if mate.number == 1 else FLAG_LAST)
        if mate.tname is None:
            flag |= FLAG_MATE_UNMAPPED
        else:
            flag |= FLAG_MATE_REVERSE if mate.reverse else 0
            rnext, pnext = mate.tname, mate.tstart + 1
    tag_rg = f"\tRG:Z:{rg}" if rg else ""
    if hit is None:
        flag |= FLAG_UNMAPPED
        text, q = seq.decode(), (qual.decode() if qual else "*")
        if place is not None:  # an unmapped mate sits at its mate's place, its strand unset
            return (f"{name}\t{flag}\t{place.tname}\t{place.tstart + 1}\t0\t*\t=\t{place.tstart + 1}\t0\t"
                    f"{text}\t{q}{tag_rg}\n")
        return f"{name}\t{flag}\t*\t0\t0\t*\t{rnext}\t{pnext}\t0\t{text}\t{q}{tag_rg}\n"
    if hit.strand == "-":
        left, right = hit.qlen - hit.qend, hit.qstart
    else:
        left, right = hit.qstart, hit.qlen - hit.qend
    cigar = (f"{left}S" if left else "") + hit.cigar + (f"{right}S" if right else "")
    flag |= (FLAG_REVERSE if hit.strand == "-" else 0) | (0 if hit.primary else FLAG_SECONDARY)
    if mate is not None and mate.tname is not None:
        if mate.proper and hit.primary:
            flag |= FLAG_PROPER
        if mate.tname == hit.tname:
            rnext = "="
            tlen = mate.tlen if hit.primary else 0
    elif mate is not None and mate.tname is None and hit.primary:
        rnext, pnext = "=", hit.tstart + 1  # the unmapped mate is placed here
    if hit.strand == "-":
        text = seq.translate(COMPLEMENT_BYTES)[::-1].decode()
        q = qual[::-1].decode() if qual else "*"
    else:
        text, q = seq.decode(), (qual.decode() if qual else "*")
    tags = f"NM:i:{hit.nm}\tAS:i:{hit.score}{tag_rg}"
    return (f"{name}\t{flag}\t{hit.tname}\t{hit.tstart + 1}\t{hit.mapq}\t{cigar}\t{rnext}\t{pnext}\t{tlen}\t"
            f"{text}\t{q}\t{tags}\n")
