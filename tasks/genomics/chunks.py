"""FASTQ in chunks: the driver cuts the (decompressed) stream at record boundaries by
counting lines, and Ray workers encode each chunk in one compiled pass. No Prefect here.

A plain file is never copied through the driver: a chunk is a byte range that the worker
reads itself. A gzip stream is decompressed once, by the driver (ISA-L when installed),
and its chunks travel as numpy arrays, or, where the workers run on the driver's machine, as
files in shared memory (:mod:`tasks.runtime.handoff`).

The fast path (Numba) needs strict four-line FASTQ records; anything it does not accept
(blank lines, bad characters, a short quality line) goes through the validating line
parser of :mod:`tasks.genomics.fastx` on the same chunk, so errors name the file and the line as
before.
"""

from __future__ import annotations

import ctypes
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpc.codec import pack_codes
from hpc.kernels.fastq import NL, copy_runs, cut_block, encode_records, first_mismatch, gather_names
from tasks.genomics.encoding import (
    BASES,
    MAX_NAME_BYTES,
    DecodeCheckError,
    EncodedShard,
    codes_of,
    name_array,
    name_list,
    name_too_long,
)
from tasks.genomics.fastx import (
    GZIP_ERRORS,
    GZIP_MAGIC,
    NORMALIZE,
    FastxFormatError,
    _fastq,
    _lines,
    crc32,
    open_maybe_gzip,
)

BLOCK = 4 << 20
_NORMALIZE = np.frombuffer(NORMALIZE, dtype=np.uint8)
_QUADS = np.array([[BASES[(b >> shift) & 3] for shift in (6, 4, 2, 0)] for b in range(256)],
                  dtype=np.uint8)  # a packed byte -> its four letters
_CODE_LUT = np.zeros(256, dtype=np.uint8)  # byte -> base code + 1; 0: not a base
for _b in range(256):
    if NORMALIZE[_b]:
        _CODE_LUT[_b] = BASES.index(NORMALIZE[_b]) + 1


@dataclass(frozen=True)
class Chunk:
    """Consecutive FASTQ records: lines from ``first_line``, ``length`` bytes at ``offset`` of
    the (decompressed) stream. ``data`` holds them for a gzip stream, or ``held`` names a file
    that does (the whole file); for a plain file both are None and the bytes are read from
    the file. ``done`` is the fraction of the input file read when the chunk was cut (for
    progress)."""

    first_line: int
    offset: int
    length: int
    data: np.ndarray | None
    done: float
    held: str | None = None

    def read(self, path: str | Path, scratch: str | None = None) -> np.ndarray:
        """The chunk's bytes. ``scratch``: read into this process's reusable buffer of that
        name (valid until the next read into it) instead of fresh memory."""
        if self.data is not None:
            return self.data
        out = _scratch(scratch, self.length) if scratch else np.empty(self.length, dtype=np.uint8)
        source, offset = (self.held, 0) if self.held else (path, self.offset)
        with open(source, "rb", buffering=0) as fh:
            fh.seek(offset)
            got = fh.readinto(memoryview(out))
        if got != self.length:
            raise FastxFormatError(path, self.first_line, f"file changed while it was read: expected {self.length} "
                                   f"bytes at offset {self.offset}, got {got}")
        return out


_SCRATCH: dict[str, np.ndarray] = {}


def _scratch(name: str, size: int) -> np.ndarray:
    """A per-process buffer of at least ``size`` bytes, kept between chunks: a worker then
    touches no fresh pages for it (page faults were a third of the encode's time)."""
    buf = _SCRATCH.get(name)
    if buf is None or buf.shape[0] < size:
        buf = _SCRATCH[name] = np.empty(max(size, 1), dtype=np.uint8)
    return buf[:size]


def is_fastq(path: Path) -> bool:
    with open_maybe_gzip(path) as fh:
        head = fh.read(4096).lstrip()
    return head.startswith(b"@")


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def chunks(path: Path, shard_reads: int, shard_mb: float, reuse: bool = False) -> Iterator[Chunk]:
    """Consecutive chunks of ``shard_reads`` four-line records, fewer when that would pass
    ``2 * shard_mb`` MiB, and at the end. Memory: one block buffer for a plain file; for
    gzip, one buffer holding the open chunk and a block, decompressed into directly.

    ``reuse``: a gzip chunk's ``data`` is a view into that buffer, valid only until the next
    chunk is taken (the encoder hands it to Ray, which copies it, first); otherwise each
    chunk's data is its own copy."""
    path = Path(path)
    gz = is_gzip(path)
    limit = max(1, int(min(2 * shard_mb * 2**20, 2**62)))  # inf: cut by record count alone
    size = max(1, path.stat().st_size)
    state = np.zeros(4, dtype=np.int64)
    ends = np.empty(BLOCK // 2 + 2, dtype=np.int64)  # room for the chunk ends of the worst case
    recs = np.empty_like(ends)
    buf = np.empty(BLOCK + (min(limit, 256 << 20) + BLOCK if gz else 0), dtype=np.uint8)  # grows as a chunk needs
    head = fill = 0  # stream offset of buf[0]; gzip: bytes of buf in use, from the open chunk's start
    line = 1
    with open_maybe_gzip(path) as fh:
        raw = getattr(fh, "fileobj", None) or fh  # compressed position, for progress
        # gzip: the buffered reader over the decompressor fills our buffer without allocating
        reader = getattr(fh, "_buffer", fh) if gz else fh
        while True:
            if gz and buf.shape[0] - fill < BLOCK:  # one record longer than the room left
                bigger = np.empty(2 * buf.shape[0], dtype=np.uint8)
                bigger[:fill] = buf[:fill]
                buf = bigger
            at = fill if gz else 0
            try:
                got = reader.readinto(memoryview(buf)[at:at + BLOCK])
            except GZIP_ERRORS as exc:
                raise FastxFormatError(path, None, f"gzip stream is corrupt or truncated ({exc})") from exc
            if not got:
                break
            block = buf[at:at + got]
            start = int(state[1])
            count = cut_block(block, head + at, shard_reads, limit, state, ends, recs)
            done = min(1.0, raw.tell() / size)
            for end, n in zip(ends[:count].tolist(), recs[:count].tolist()):
                data = None
                if gz:
                    view = buf[start - head:end - head]
                    data = view if reuse else view.copy()
                yield Chunk(line, start, end - start, data, done)
                line += 4 * n
                start = end
            if not gz:
                head += got
                continue
            fill = at + got
            keep = int(state[1]) - head  # where the open chunk starts in buf
            if keep > 0 and (count or buf.shape[0] - fill < BLOCK):  # move the open chunk to the front
                ctypes.memmove(buf.ctypes.data, buf.ctypes.data + keep, fill - keep)
                head, fill = head + keep, fill - keep
    start, total = int(state[1]), head + fill
    if total > start:  # the records after the last full chunk (or a broken record, reported by the parser)
        last = Chunk(line, start, total - start, buf[start - head:fill].copy() if gz else None, 1.0)
        if bytes(last.read(path)).strip():
            yield last


def chunk_identity(chunk: Chunk, data: np.ndarray) -> dict:
    return {"first_line": chunk.first_line, "chunk_bytes": int(data.shape[0]), "chunk_crc32": crc32(data)}


def _slow(data: bytes, source: str, first_line: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    lines = ((n + first_line - 1, t) for n, t in _lines(io.BytesIO(data), Path(source)))
    first = next(((n, t) for n, t in lines if t), None)
    if first is None:
        return [], np.zeros(0, np.uint8), np.zeros(0, np.int32), np.zeros(0, np.uint8)
    records = list(_fastq(Path(source), lines, first))
    for r in records:
        if len(r.name.encode()) > MAX_NAME_BYTES:
            raise FastxFormatError(source, r.line, name_too_long(len(r.name.encode())))
    seqs = b"".join(r.seq for r in records)
    return ([r.name for r in records], np.frombuffer(seqs, dtype=np.uint8),
            np.array([len(r.seq) for r in records], dtype=np.int32),
            np.frombuffer(b"".join(r.qual for r in records), dtype=np.uint8))


def quality_bytes(data: np.ndarray, seq_s: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The quality characters of strict four-line records (as :func:`encode_records` accepted
    them): each record's quality line follows the line after its sequence."""
    newlines = np.flatnonzero(data == NL)
    q_start = newlines[np.searchsorted(newlines, seq_s + lengths) + 1] + 1
    out_start = np.cumsum(lengths, dtype=np.int64) - lengths
    out = np.empty(int(lengths.sum()), dtype=np.uint8)
    copy_runs(data, q_start.astype(np.int64), lengths, out_start, out)
    return out


def encode_chunk(data: np.ndarray, source: str, first_line: int, shard_no: int = 0,
                 qualities: bool = True) -> EncodedShard:
    """Parse and encode one chunk (with its base qualities unless ``qualities`` is False);
    every base is decoded back and compared with its input (:class:`DecodeCheckError` names
    the first read that differs)."""
    ok, name_s, name_e, seq_s, lengths, packed, nmask = encode_records(data, _CODE_LUT)
    quals = None
    if ok and qualities:
        quals = quality_bytes(data, seq_s, lengths)
        ok = bool(quals.shape[0] == 0 or (quals.min() >= 33 and quals.max() <= 126))  # else the parser says where
    if ok and (name_e - name_s).max(initial=0) > MAX_NAME_BYTES:  # before names are padded to the longest
        i = int(np.argmax(name_e - name_s > MAX_NAME_BYTES))
        raise FastxFormatError(source, first_line + 4 * i, name_too_long(int(name_e[i] - name_s[i])))
    if ok:
        raw = gather_names(data, name_s, name_e)
        names = raw.view(f"S{raw.shape[1]}").reshape(-1)
        buf = data
    else:
        text, buf, lengths, quals = _slow(data.tobytes(), source, first_line)
        quals = quals if qualities else None
        names = name_array(text)
        seq_s = np.zeros(lengths.shape[0], dtype=np.int64)
        np.cumsum(lengths[:-1], out=seq_s[1:])
        packed, nmask = pack_codes(codes_of(buf))
    bad = first_mismatch(buf, seq_s, lengths, packed, nmask, _NORMALIZE, _QUADS, _scratch("letters", 4 * packed.shape[0]))
    if bad >= 0:
        raise DecodeCheckError(f"shard {shard_no}: read {bad} ({name_list(names[bad:bad + 1])[0]!r}) does not "
                               "decode to its input")
    offsets = np.zeros(lengths.shape[0], dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    return EncodedShard(names, lengths, offsets, packed, nmask, quals)


def warm_up(role: str) -> None:
    """Load the compiled kernels a process will run (the first Numba call in a process takes
    about a second): the chunk cutter for the ``"driver"``, the encoder for a ``"worker"``."""
    data = np.frombuffer(b"@w\nACGT\n+\nIIII\n", dtype=np.uint8)
    if role == "driver":
        ends = np.empty(4, dtype=np.int64)
        cut_block(data, 0, 1, 1 << 20, np.zeros(4, dtype=np.int64), ends, ends.copy())
    elif role == "worker":
        encode_chunk(data, "warm-up", 1)
    else:
        raise ValueError(f"warm_up: role must be 'driver' or 'worker', not {role!r}")
