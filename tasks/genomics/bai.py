"""The BAI index of a BAM written here, built while its sorted records are written (no
second read of the file, as ``samtools index`` needs): per reference, each bin's chunks of
virtual offsets, the 16-kbp linear index and the mapped/unmapped counts (SAMv1 5.2).
Offsets are kept as offsets into the uncompressed stream until the end, when the BGZF
blocks' places are known; a stream offset ``u`` is in block ``u // BLOCK_INPUT``.

Chunks of one bin are merged when the next begins in the block where the last ends, as
htslib does: a reader then decompresses that block once and skips a few records."""

from __future__ import annotations

import struct

import numpy as np

from hpc.files import atomic_write_bytes
from hpc.kernels.bam import index_scan
from tasks.genomics.bgzf import BLOCK_INPUT

WINDOW_SHIFT = 14
PSEUDO_BIN = 37450
_UNSET = np.int64(1) << 62
# Runs whose chunks are merged into one entry: merging is the same in steps as at once (a chunk
# joins the one before it in its bin by their two offsets alone), and 50,000 runs of a 30x human
# BAM would otherwise hold 150,000 small arrays.
MERGE_EVERY = 256


def _merge_chunks(key: np.ndarray, beg: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, ...]:
    """Chunks ordered by bin (stable, so by offset within a bin), neighbours in one bin
    merged when one begins in the block where the other ends."""
    order = np.argsort(key, kind="stable")
    key, beg, end = key[order], beg[order], end[order]
    if key.shape[0] == 0:
        return key, beg, end
    new = np.ones(key.shape[0], dtype=bool)
    new[1:] = (key[1:] != key[:-1]) | (beg[1:] // BLOCK_INPUT != end[:-1] // BLOCK_INPUT)
    first = np.nonzero(new)[0]
    last = np.append(first[1:], key.shape[0]) - 1
    return key[first], beg[first], end[last]


class BaiBuilder:
    """Fed each run of sorted records as it is written (:meth:`add`); :meth:`write` the
    index once the BAM's blocks are all written."""

    def __init__(self, lengths: list[int]) -> None:
        windows = np.array([(max(1, n) - 1 >> WINDOW_SHIFT) + 1 for n in lengths], dtype=np.int64)
        self.lin_base = np.concatenate([[0], np.cumsum(windows)]).astype(np.int64)
        self.lin_u = np.full(int(self.lin_base[-1]), _UNSET, dtype=np.int64)
        self.ref_first = np.full(len(lengths), -1, dtype=np.int64)
        self.ref_last = np.zeros(len(lengths), dtype=np.int64)
        self.counts = np.zeros((len(lengths), 2), dtype=np.int64)
        self.no_coor = 0
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._merged = 0  # the first entries of _chunks, each MERGE_EVERY runs' chunks merged

    def add(self, buf: np.ndarray, starts: np.ndarray, u_base: int) -> None:
        """Records ``buf[starts[k]:starts[k+1]]``, in sorted order, at stream offset ``u_base``."""
        n = starts.shape[0] - 1
        key, beg, end = (np.empty(n, dtype=np.int64) for _ in range(3))
        runs, no_coor = index_scan(buf, starts, u_base, self.lin_base, self.lin_u, self.ref_first, self.ref_last,
                                   self.counts, key, beg, end)
        self.no_coor += no_coor
        self._chunks.append(_merge_chunks(key[:runs], beg[:runs], end[:runs]))
        if len(self._chunks) - self._merged >= MERGE_EVERY:  # the index's chunks, not three arrays per run
            self._chunks[self._merged:] = [_merge_chunks(*map(np.concatenate, zip(*self._chunks[self._merged:])))]
            self._merged += 1

    def to_bytes(self, block_offsets: np.ndarray) -> bytes:
        """The index, with ``block_offsets[b]`` the file offset of BGZF block ``b`` (and one
        past the last block of data)."""
        coff = np.asarray(block_offsets, dtype=np.uint64)

        def voff(u: np.ndarray) -> np.ndarray:
            u = np.asarray(u, dtype=np.int64)
            return (coff[u // BLOCK_INPUT] << np.uint64(16)) | (u % BLOCK_INPUT).astype(np.uint64)

        parts = [np.concatenate(p) for p in zip(*self._chunks)] if self._chunks else [np.zeros(0, np.int64)] * 3
        key, beg, end = _merge_chunks(*parts)
        vbeg, vend = voff(beg), voff(end)
        tid_of = key >> 16
        out = [b"BAI\1", struct.pack("<i", self.ref_first.shape[0])]
        bounds = np.searchsorted(tid_of, np.arange(self.ref_first.shape[0] + 1))
        for t in range(self.ref_first.shape[0]):
            a, e = int(bounds[t]), int(bounds[t + 1])
            bins = key[a:e] & 0xFFFF
            starts = np.nonzero(np.append(True, bins[1:] != bins[:-1]))[0] if e > a else np.zeros(0, np.int64)
            has = self.ref_first[t] >= 0
            out.append(struct.pack("<i", starts.shape[0] + (1 if has else 0)))
            ends = np.append(starts[1:], e - a)
            for s, f in zip(starts, ends):
                pairs = np.empty((f - s, 2), dtype="<u8")
                pairs[:, 0], pairs[:, 1] = vbeg[a + s:a + f], vend[a + s:a + f]
                out += [struct.pack("<Ii", int(bins[s]), int(f - s)), pairs.tobytes()]
            if has:
                first, last = voff(self.ref_first[t:t + 1])[0], voff(self.ref_last[t:t + 1])[0]
                out.append(struct.pack("<IiQQQQ", PSEUDO_BIN, 2, int(first), int(last),
                                       int(self.counts[t, 0]), int(self.counts[t, 1])))
            lin = self.lin_u[self.lin_base[t]:self.lin_base[t + 1]]
            used = np.nonzero(lin != _UNSET)[0]
            n_intv = int(used[-1]) + 1 if used.shape[0] else 0
            # An empty window takes the offset of the last window before it that has one (every
            # record overlapping it comes later); windows before the first record get 0.
            idx = np.where(lin[:n_intv] != _UNSET, np.arange(n_intv), -1)
            np.maximum.accumulate(idx, out=idx)
            lin = np.zeros(n_intv, dtype=np.uint64)
            lin[idx >= 0] = voff(self.lin_u[self.lin_base[t] + idx[idx >= 0]])
            out += [struct.pack("<i", n_intv), np.asarray(lin, dtype="<u8").tobytes()]
        out.append(struct.pack("<Q", self.no_coor))
        return b"".join(out)

    def write(self, path, block_offsets: np.ndarray) -> None:
        atomic_write_bytes(path, self.to_bytes(block_offsets))

