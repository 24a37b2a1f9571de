"""FASTQ in chunks: the driver cuts the (decompressed) stream at record boundaries by
counting lines, and Ray workers parse each chunk with numpy. No Prefect here.

The fast path needs strict four-line FASTQ records; anything it does not accept (blank
lines, bad characters, a short quality line) goes through the validating line parser of
:mod:`tasks.fastx` on the same chunk, so errors name the file and the line as before.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tasks.fastx import NORMALIZE, FastxFormatError, _fastq, _lines, open_maybe_gzip

BLOCK = 4 << 20
_LUT = np.frombuffer(NORMALIZE, dtype=np.uint8)


def is_fastq(path: Path) -> bool:
    with open_maybe_gzip(path) as fh:
        head = fh.read(4096).lstrip()
    return head.startswith(b"@")


def chunks(path: Path, shard_reads: int, shard_mb: float) -> Iterator[tuple[int, bytes]]:
    """(first line number, bytes) of consecutive chunks of ``shard_reads`` four-line records,
    fewer when that would pass ``2 * shard_mb`` MiB, and at the end. Only the buffer being
    cut (one read block plus a partial chunk) is held in memory."""
    want = 4 * shard_reads
    limit = max(1, int(2 * shard_mb * 2**20))
    line, buf = 1, bytearray()
    with open_maybe_gzip(path) as fh:
        while True:
            try:
                block = fh.read(BLOCK)
            except (EOFError, OSError) as exc:
                raise FastxFormatError(path, None, f"gzip stream is corrupt or truncated ({exc})") from exc
            buf += block
            nl = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 10)
            used = 0  # newlines consumed; byte offset of the next chunk is nl[used - 1] + 1
            start = 0
            while block and nl.shape[0] - used >= 4:
                avail = ((nl.shape[0] - used) // 4) * 4
                take = min(want, avail)
                end = int(nl[used + take - 1]) + 1
                if end - start > limit:  # too big: the last record boundary within the limit
                    within = int(np.searchsorted(nl[used:], start + limit, side="left"))
                    take = max(4, (within // 4) * 4)
                    end = int(nl[used + take - 1]) + 1
                elif take < want:
                    break  # a short chunk only at the end of the file
                yield line, bytes(buf[start:end])
                line, used, start = line + take, used + take, end
            del buf[:start]
            if not block:
                if buf.strip():
                    yield line, bytes(buf)
                return


def chunk_identity(first_line: int, data: bytes) -> dict:
    return {"first_line": first_line, "chunk_bytes": len(data), "chunk_crc32": zlib.crc32(data)}


def _slow(data: bytes, source: str, first_line: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    lines = ((n + first_line - 1, t) for n, t in _lines(io.BytesIO(data), Path(source)))
    first = next(((n, t) for n, t in lines if t), None)
    if first is None:
        return [], np.zeros(0, np.uint8), np.zeros(0, np.int32)
    records = list(_fastq(Path(source), lines, first))
    seqs = b"".join(r.seq for r in records)
    return ([r.name for r in records], np.frombuffer(seqs, dtype=np.uint8),
            np.array([len(r.seq) for r in records], dtype=np.int32))


def parse_chunk(data: bytes, source: str, first_line: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, normalized bases of all reads concatenated as uint8, lengths) of one chunk."""
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [buf.shape[0]]))
    if starts[-1] >= buf.shape[0]:  # the chunk ends with a newline: no partial last line
        starts, ends = starts[:-1], ends[:-1]
    if ends.shape[0]:
        cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
        ends = ends - cr
    n = starts.shape[0]
    ok = n % 4 == 0 and n > 0 and bool(np.all(ends > starts))
    if ok:
        h, s, p, q = (starts[i::4] for i in range(4))
        s_len = ends[1::4] - s
        ok = (bool(np.all(buf[h] == 64)) and bool(np.all(buf[p] == 43))
              and bool(np.all(s_len == ends[3::4] - q)))
    if ok:
        total = int(s_len.sum())
        first = np.repeat(np.cumsum(s_len) - s_len, s_len)
        idx = np.repeat(s, s_len) + (np.arange(total) - first)
        bases = _LUT[buf[idx]]
        ok = not bool(np.any(bases == 0))
    if not ok:
        return _slow(data, source, first_line)
    names = []
    for a, b in zip((h + 1).tolist(), ends[0::4].tolist()):
        field = data[a:b].split(None, 1)
        if not field:
            return _slow(data, source, first_line)
        names.append(field[0].decode("utf-8", errors="replace"))
    return names, bases, s_len.astype(np.int32)
