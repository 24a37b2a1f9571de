"""SAM's header with read groups and the program line, and the FLAG bits; the records
themselves are written by :mod:`tasks.genomics.records`."""

from __future__ import annotations

from dataclasses import dataclass

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
