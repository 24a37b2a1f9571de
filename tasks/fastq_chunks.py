"""FASTQ in chunks: the driver cuts the (decompressed) stream at record boundaries by
counting lines, and Ray workers parse each chunk in one compiled pass. No Prefect here.

The fast path (Numba) needs strict four-line FASTQ records; anything it does not accept
(blank lines, bad characters, a short quality line) goes through the validating line
parser of :mod:`tasks.fastx` on the same chunk, so errors name the file and the line as
before.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from pathlib import Path

import numba
import numpy as np

from hpc.sw_kernel import NJIT

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


@numba.njit(**NJIT)
def _scan(buf, lut):
    """One pass over strict four-line FASTQ: (ok, name starts, name ends, sequence lengths,
    normalized bases). ``ok`` is False at the first thing the fast path does not accept."""
    n = buf.shape[0]
    lines = 0
    for i in range(n):
        lines += buf[i] == 10
    if n and buf[n - 1] != 10:
        lines += 1
    nrec = lines // 4
    name_s = np.zeros(nrec, dtype=np.int64)
    name_e = np.zeros(nrec, dtype=np.int64)
    seq_len = np.zeros(nrec, dtype=np.int32)
    bases = np.empty(n, dtype=np.uint8)
    fail = (False, name_s, name_e, seq_len, bases[:0])
    if lines % 4 != 0 or nrec == 0:
        return fail
    pos = 0
    nb = 0
    for r in range(nrec):
        ends = np.empty(4, dtype=np.int64)  # end of each line's text (CR stripped)
        starts = np.empty(4, dtype=np.int64)
        for k in range(4):
            starts[k] = pos
            while pos < n and buf[pos] != 10:
                pos += 1
            e = pos
            if e > starts[k] and buf[e - 1] == 13:
                e -= 1
            ends[k] = e
            pos += 1
        if ends[0] <= starts[0] or buf[starts[0]] != 64 or ends[2] <= starts[2] or buf[starts[2]] != 43:
            return fail
        length = ends[1] - starts[1]
        if length == 0 or ends[3] - starts[3] != length:
            return fail
        j = starts[0] + 1
        while j < ends[0] and buf[j] != 32 and buf[j] != 9:
            j += 1
        if j == starts[0] + 1:
            return fail
        name_s[r] = starts[0] + 1
        name_e[r] = j
        for i in range(starts[1], ends[1]):
            c = lut[buf[i]]
            if c == 0:
                return fail
            bases[nb] = c
            nb += 1
        seq_len[r] = length
    return True, name_s, name_e, seq_len, bases[:nb]


def parse_chunk(data: bytes, source: str, first_line: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, normalized bases of all reads concatenated as uint8, lengths) of one chunk."""
    ok, name_s, name_e, lengths, bases = _scan(np.frombuffer(data, dtype=np.uint8), _LUT)
    if not ok:
        return _slow(data, source, first_line)
    names = [data[a:b].decode("utf-8", errors="replace") for a, b in zip(name_s.tolist(), name_e.tolist())]
    return names, bases, lengths
