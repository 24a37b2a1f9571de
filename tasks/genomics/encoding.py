"""2-bit packed bases plus an N mask (and, from FASTQ, the base qualities compressed):
encode, decode, and the exact round-trip check."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpc.codec import CODE_N, pack_codes, unpack_codes

BASES = b"ACGTN"
# SAM's limit for QNAME. Shards store names at the width of the longest in the shard, so one
# 200-kB name made every read in its shard cost 200 kB; a longer name is refused at encode.
MAX_NAME_BYTES = 254


def name_too_long(length: int) -> str:
    return f"read name is {length} bytes; expected at most {MAX_NAME_BYTES} (SAM's limit for a read name)"
_TO_CODE = np.full(256, 255, dtype=np.uint8)
for _code, _ch in enumerate(BASES):
    _TO_CODE[_ch] = _code
_TO_BYTE = np.frombuffer(BASES, dtype=np.uint8)


def to_codes(seq: bytes) -> np.ndarray:
    """Base codes (A=0, C=1, G=2, T=3, N=4) of a normalized sequence."""
    codes = _TO_CODE[np.frombuffer(seq, dtype=np.uint8)]
    if codes.size and codes.max() > CODE_N:
        raise ValueError("sequence holds characters other than A, C, G, T, N; normalize it first")
    return codes


def codes_of(bases: np.ndarray) -> np.ndarray:
    """Base codes of normalized bases given as a uint8 array (A, C, G, T, N only)."""
    return _TO_CODE[bases]


def to_bytes(codes: np.ndarray) -> bytes:
    return _TO_BYTE[codes].tobytes()


def name_array(names: list[str]) -> np.ndarray:
    """Read names as a fixed-width bytes array (UTF-8), the form shards store them in."""
    return np.array([n.encode("utf-8") for n in names], dtype=np.bytes_)


def text_rows(values: np.ndarray) -> np.ndarray:
    """Names (bytes or text) as the kernels read them: ``uint8`` rows, NUL-padded."""
    arr = np.asarray(values)
    if arr.dtype.kind == "U":
        arr = np.char.encode(arr, "utf-8")
    arr = np.ascontiguousarray(arr, dtype=arr.dtype if arr.dtype.kind == "S" else np.bytes_)
    return arr.view(np.uint8).reshape(arr.shape[0], arr.dtype.itemsize)


def name_hashes(names: np.ndarray | list[str]) -> np.ndarray:
    """A 64-bit hash per read name (uint64), to find repeated names without holding them."""
    from hpc.kernels.fastq import name_hashes_of_rows

    arr = names if isinstance(names, np.ndarray) and names.dtype.kind == "S" else name_array(list(names))
    if arr.shape[0] == 0 or arr.dtype.itemsize == 0:
        return np.zeros(arr.shape[0], dtype=np.uint64)
    return name_hashes_of_rows(text_rows(arr))


def repeated_name_candidates(hashes: list[np.ndarray]) -> list[tuple[int, int]]:
    """Pairs (earlier, later) of global read numbers whose name hashes are equal, ordered by
    the later one; the caller confirms with the names themselves."""
    every = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
    order = np.argsort(every, kind="stable")  # stable: equal hashes stay in input order
    same = np.nonzero(every[order][1:] == every[order][:-1])[0]
    pairs = sorted(((int(order[i]), int(order[i + 1])) for i in same), key=lambda p: p[1])
    return pairs


def name_list(names: np.ndarray) -> list[str]:
    """Read names as text, from a shard's names array (bytes; older shards: unicode)."""
    if names.dtype.kind == "S":
        return [n.decode("utf-8", errors="replace") for n in names.tolist()]
    return [str(n) for n in names.tolist()]


def compress_quals(quals: np.ndarray) -> np.ndarray:
    """Quality characters (one byte per base) deflated (ISA-L, level 1: about 250 MB/s),
    as a uint8 array for the shard's ``.npz``."""
    from isal import isal_zlib

    return np.frombuffer(isal_zlib.compress(np.ascontiguousarray(quals, dtype=np.uint8), 1), dtype=np.uint8)


def decompress_quals(blob: np.ndarray, n_bases: int) -> np.ndarray:
    from isal import isal_zlib

    out = np.frombuffer(isal_zlib.decompress(memoryview(np.ascontiguousarray(blob))), dtype=np.uint8)
    if out.shape[0] != n_bases:
        raise ValueError(f"shard qualities hold {out.shape[0]} characters for {n_bases} bases")
    return out


class QualityStream:
    """A shard's qualities (:func:`compress_quals`' stream) inflated front to back, ``take(n)``
    characters at a time: a slice's qualities in memory, never the shard's."""

    STEP = 1 << 16  # compressed bytes inflated at a time

    def __init__(self, blob: np.ndarray) -> None:
        from isal import isal_zlib

        self._blob = memoryview(np.ascontiguousarray(blob)).cast("B")
        self._inflate = isal_zlib.decompressobj()
        self._pos = 0
        self._out = bytearray()

    def take(self, n: int) -> np.ndarray:
        while len(self._out) < n and self._pos < len(self._blob):
            self._out += self._inflate.decompress(self._blob[self._pos:self._pos + self.STEP])
            self._pos += self.STEP
        if len(self._out) < n:
            raise ValueError(f"shard qualities end {n - len(self._out)} characters short of the bases")
        got = np.frombuffer(bytes(self._out[:n]), dtype=np.uint8)
        del self._out[:n]
        return got

    def check_done(self) -> None:
        """Every character has been taken: the stream held one for each base, no more."""
        rest = len(self._out) + len(self._inflate.decompress(self._blob[self._pos:]))
        self._pos = len(self._blob)
        if rest:
            raise ValueError(f"shard qualities hold {rest} characters more than the bases")


@dataclass
class EncodedShard:
    """A shard of reads: names, lengths, offsets into the concatenated packed bases.
    ``names`` is a list of text or, straight from the FASTQ encoder, a bytes array.
    ``quals``: Phred+33 characters of every base (None: FASTA, or qualities switched off).
    ``mates``: 2 when the reads are pairs, mate 1 at even and mate 2 at odd positions
    (both carrying the pair's name), else 1."""

    names: list[str] | np.ndarray
    lengths: np.ndarray  # int32
    offsets: np.ndarray  # int64, start of each read in the concatenated sequence
    packed: np.ndarray  # uint8, 2-bit
    nmask: np.ndarray  # uint8, 1-bit
    quals: np.ndarray | None = None  # uint8, one per base
    mates: int = 1

    @property
    def n_reads(self) -> int:
        return len(self.names)

    @property
    def n_bases(self) -> int:
        return int(self.lengths.sum())

    def codes(self) -> np.ndarray:
        return unpack_codes(self.packed, self.nmask, self.n_bases)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "names": self.names if isinstance(self.names, np.ndarray) else name_array(self.names),
            "lengths": self.lengths,
            "offsets": self.offsets,
            "packed": self.packed,
            "nmask": self.nmask,
            "name_hash": name_hashes(self.names),
            "mates": np.array(self.mates, dtype=np.int8),
        }
        if self.quals is not None:
            arrays["quals_z"] = compress_quals(self.quals)
        return arrays

    @classmethod
    def from_arrays(cls, arrays) -> "EncodedShard":
        """The shard of :meth:`to_arrays`' arrays; those of :data:`~hpc.codec.BASE_MEMBERS` alone
        give its bases and empty names (seeding's shard: it reads no names or qualities)."""
        lengths = np.asarray(arrays["lengths"], dtype=np.int32)
        files = arrays.keys()
        return cls(
            names=name_list(arrays["names"]) if "names" in files else np.zeros(lengths.shape[0], dtype="S1"),
            lengths=lengths,
            offsets=np.asarray(arrays["offsets"], dtype=np.int64),
            packed=np.asarray(arrays["packed"], dtype=np.uint8),
            nmask=np.asarray(arrays["nmask"], dtype=np.uint8),
            quals=decompress_quals(arrays["quals_z"], int(lengths.sum())) if "quals_z" in files else None,
            mates=int(arrays["mates"]) if "mates" in files else 1,
        )


def shard_mates(arrays) -> int:
    """1 for single reads, 2 for a shard of interleaved pairs (see :class:`EncodedShard`)."""
    return int(arrays["mates"]) if "mates" in arrays else 1


def encode_sequences(names: list[str], seqs: list[bytes], quals: list[bytes] | None = None,
                     mates: int = 1) -> EncodedShard:
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int32, count=len(seqs))
    offsets = np.zeros(len(seqs), dtype=np.int64)
    if len(seqs) > 1:
        np.cumsum(lengths[:-1], out=offsets[1:])
    codes = to_codes(b"".join(seqs))
    packed, nmask = pack_codes(codes)
    q = None if quals is None else np.frombuffer(b"".join(quals), dtype=np.uint8)
    return EncodedShard(list(names), lengths, offsets, packed, nmask, q, mates)


def decode_sequences(shard: EncodedShard) -> list[bytes]:
    text = to_bytes(shard.codes())
    return [text[o : o + n] for o, n in zip(shard.offsets.tolist(), shard.lengths.tolist())]


def first_mismatch(shard: EncodedShard, seqs: list[bytes]) -> int | None:
    """Index of the first read whose decoded bases differ from the input; None when exact."""
    decoded = decode_sequences(shard)
    if len(decoded) != len(seqs):
        return min(len(decoded), len(seqs))
    for i, (a, b) in enumerate(zip(decoded, seqs)):
        if a != b:
            return i
    return None


class DecodeCheckError(RuntimeError):
    """A shard did not decode to exactly the bases it was encoded from."""


def encode_and_check(shard_no: int, names: list[str], seqs: list[bytes]) -> EncodedShard:
    """Encode one shard and decode it back; any read that differs fails the shard."""
    shard = encode_sequences(names, seqs)
    bad = first_mismatch(shard, seqs)
    if bad is not None:
        raise DecodeCheckError(f"shard {shard_no}: read {bad} ({names[bad]!r}) does not decode to its input")
    return shard
