"""Numba kernels for BAM: binary alignment records from collect's columns (the same fields
:func:`hpc.kernels.text.sam_text` writes as text), and the BAI index's bins and offsets. Layouts follow the SAM/BAM spec (SAMv1 4.2,
5.2); integers are little-endian. No I/O.

Integer tags get the smallest type that holds them (``C``/``S``/``I`` for values >= 0,
``c``/``s``/``i`` below), as samtools does when it turns SAM text into BAM, so a record is
byte for byte what ``samtools view -b`` makes of the same line.
"""

from __future__ import annotations

import numba
import numpy as np

from hpc.kernels.jit import NJIT
from hpc.kernels.text import RNEXT_NONE, RNEXT_SAME, _width

# BAM's 4-bit base codes ("=ACMGRSVTWYHKDBN") for our base codes A, C, G, T, N, and of their complements.
NIBBLE = np.array([1, 2, 4, 8, 15], dtype=np.uint8)
NIBBLE_COMPLEMENT = np.array([8, 4, 2, 1, 15], dtype=np.uint8)
# CIGAR letters to BAM op codes (MIDNSHP=X -> 0..8), -1 for anything else.
CIGAR_CODE = np.full(128, -1, dtype=np.int64)
for _code, _letter in enumerate(b"MIDNSHP=X"):
    CIGAR_CODE[_letter] = _code
CONSUMES_REFERENCE = np.array([1, 0, 1, 1, 0, 0, 0, 1, 1], dtype=np.int64)
FIXED_BYTES = 36  # block_size, refID, pos, l_read_name ... tlen
NO_QUALITY = 0xFF


@numba.njit(**NJIT)
def reg2bin(beg, end) -> int:
    """The smallest UCSC bin holding ``[beg, end)`` (SAMv1 5.3)."""
    end -= 1
    if beg >> 14 == end >> 14:
        return 4681 + (beg >> 14)
    if beg >> 17 == end >> 17:
        return 585 + (beg >> 17)
    if beg >> 20 == end >> 20:
        return 73 + (beg >> 20)
    if beg >> 23 == end >> 23:
        return 9 + (beg >> 23)
    if beg >> 26 == end >> 26:
        return 1 + (beg >> 26)
    return 0


@numba.njit(**NJIT)
def _put(buf, p, v, size) -> int:
    for b in range(size):
        buf[p + b] = (v >> (8 * b)) & 0xFF
    return p + size


@numba.njit(**NJIT)
def _int_tag(buf, p, a, b, v) -> int:
    buf[p] = a
    buf[p + 1] = b
    if v >= 0:
        if v <= 0xFF:
            buf[p + 2] = 67  # C
            return _put(buf, p + 3, v, 1)
        if v <= 0xFFFF:
            buf[p + 2] = 83  # S
            return _put(buf, p + 3, v, 2)
        buf[p + 2] = 73  # I
        return _put(buf, p + 3, v, 4)
    if v >= -0x80:
        buf[p + 2] = 99  # c
        return _put(buf, p + 3, v, 1)
    if v >= -0x8000:
        buf[p + 2] = 115  # s
        return _put(buf, p + 3, v, 2)
    buf[p + 2] = 105  # i
    return _put(buf, p + 3, v, 4)


@numba.njit(**NJIT)
def _cigar(buf, p, clip_left, row, clip_right):
    """The CIGAR ops of text ``row`` between soft clips; returns (end, ops, reference span),
    or (-1, column of the first bad character, 0) for text that is not a CIGAR."""
    n_ops, span = 0, 0
    if clip_left > 0:
        p = _put(buf, p, (clip_left << 4) | 4, 4)
        n_ops += 1
    v, digits = 0, 0
    for j in range(_width(row)):
        ch = row[j]
        if 48 <= ch <= 57:
            v = v * 10 + ch - 48
            digits += 1
            continue
        op = CIGAR_CODE[ch] if ch < 128 else -1
        if op < 0 or digits == 0:
            return -1, j, 0
        p = _put(buf, p, (v << 4) | op, 4)
        n_ops += 1
        span += v * CONSUMES_REFERENCE[op]
        v, digits = 0, 0
    if digits:
        return -1, _width(row), 0
    if clip_right > 0:
        p = _put(buf, p, (clip_right << 4) | 4, 4)
        n_ops += 1
    return p, n_ops, span


@numba.njit(**NJIT)
def bam_records(buf, starts, ends, names, rg, rec_read, flag, ref, pos, mapq, clip_left, clip_right, cigars,
                rec_cigar, rnext, pnext, tlen, codes, offsets, lengths, quals, has_qual, nm, score) -> int:
    """One BAM record per record, fields as :func:`hpc.kernels.text.sam_text` takes them
    (``pos``/``pnext`` 1-based, 0: none; ``rnext`` -1 ``*``, -2 ``=``). ``starts[k]`` gets
    record k's offset in ``buf`` (``starts[n]``: the end), ``ends[k]`` the end of its
    alignment on the reference (0-based, exclusive; ``pos`` + 1 when it has no CIGAR).
    ``rg``: the read group's ID, NUL-terminated (empty: no RG tag). Returns the records
    written: all of them, or k for a record whose CIGAR text is not a CIGAR."""
    p = 0
    for k in range(rec_read.shape[0]):
        starts[k] = p
        i = rec_read[k]
        name = names[i]
        l_name = _width(name)
        o, n = offsets[i], lengths[i]
        refid = ref[k]
        pos0 = pos[k] - 1
        q = p + FIXED_BYTES + l_name + 1
        c = rec_cigar[k]
        n_ops, span = 0, 0
        if c >= 0:
            q, n_ops, span = _cigar(buf, q, clip_left[k], cigars[c], clip_right[k])
            if q < 0:
                return k
        end = pos0 + (span if span > 0 else 1)
        ends[k] = end
        next_ref = refid if rnext[k] == RNEXT_SAME else (-1 if rnext[k] == RNEXT_NONE else rnext[k])
        _put(buf, p + 4, refid, 4)
        _put(buf, p + 8, pos0, 4)
        buf[p + 12] = l_name + 1
        buf[p + 13] = mapq[k]
        _put(buf, p + 14, reg2bin(pos0, end), 2)
        _put(buf, p + 16, n_ops, 2)
        _put(buf, p + 18, flag[k], 2)
        _put(buf, p + 20, n, 4)
        _put(buf, p + 24, next_ref, 4)
        _put(buf, p + 28, pnext[k] - 1, 4)
        _put(buf, p + 32, tlen[k], 4)
        for j in range(l_name):
            buf[p + FIXED_BYTES + j] = name[j]
        buf[p + FIXED_BYTES + l_name] = 0
        reverse = (flag[k] & 16) != 0
        for j in range(0, n, 2):  # two bases a byte, the first in the high nibble
            if reverse:
                hi = NIBBLE_COMPLEMENT[codes[o + n - 1 - j]]
                lo = NIBBLE_COMPLEMENT[codes[o + n - 2 - j]] if j + 1 < n else 0
            else:
                hi = NIBBLE[codes[o + j]]
                lo = NIBBLE[codes[o + j + 1]] if j + 1 < n else 0
            buf[q + j // 2] = (hi << 4) | lo
        q += (n + 1) // 2
        for j in range(n):
            if has_qual:
                buf[q + j] = (quals[o + n - 1 - j] if reverse else quals[o + j]) - 33
            else:
                buf[q + j] = NO_QUALITY
        q += n
        if c >= 0:
            q = _int_tag(buf, q, 78, 77, nm[k])  # NM
            q = _int_tag(buf, q, 65, 83, score[k])  # AS
        if rg.shape[0] > 1:
            buf[q] = 82  # R
            buf[q + 1] = 71  # G
            buf[q + 2] = 90  # Z
            for j in range(rg.shape[0]):
                buf[q + 3 + j] = rg[j]
            q += 3 + rg.shape[0]
        _put(buf, p, q - p - 4, 4)
        p = q
    starts[rec_read.shape[0]] = p
    return rec_read.shape[0]


def bam_bound(records: int, bases: int, name_width: int, cigar_width: int, rg: int) -> int:
    """Bytes that ``records`` BAM records of ``bases`` bases in all can take, at most."""
    return records * (FIXED_BYTES + name_width + 1 + 4 * (cigar_width // 2 + 3) + 14 + rg + 3) + 2 * bases


@numba.njit(**NJIT)
def _get(buf, p, size) -> int:
    v = 0
    for b in range(size):
        v |= np.int64(buf[p + b]) << (8 * b)
    return v


@numba.njit(**NJIT)
def index_scan(buf, starts, u_base, lin_base, lin_u, ref_first, ref_last, counts, run_key, run_beg, run_end):
    """Read coordinate-sorted records ``buf[starts[k]:starts[k+1]]``, which sit at stream
    offset ``u_base + starts[k]``, into a BAI index's parts: the lowest offset of a record
    overlapping each 16-kbp window (``lin_u``, reference ``t``'s windows from ``lin_base[t]``),
    each reference's first and last offset and its mapped / unmapped counts (``counts[t, 0/1]``),
    and runs of records in one bin (``run_key`` = reference << 16 | bin, stream offsets
    ``run_beg``/``run_end``). Returns (runs, records without a reference)."""
    runs, no_coor = 0, 0
    for k in range(starts.shape[0] - 1):
        p = starts[k]
        tid = np.int32(_get(buf, p + 4, 4))
        u0, u1 = u_base + p, u_base + starts[k + 1]
        if tid < 0:
            no_coor += 1
            continue
        pos = np.int32(_get(buf, p + 8, 4))
        flag = _get(buf, p + 18, 2)
        n_ops = _get(buf, p + 16, 2)
        span = 0
        q = p + FIXED_BYTES + buf[p + 12]
        for j in range(n_ops):
            op = _get(buf, q + 4 * j, 4)
            span += (op >> 4) * CONSUMES_REFERENCE[op & 15] if (op & 15) < 9 else 0
        end = pos + (span if span > 0 else 1)
        if ref_first[tid] < 0:
            ref_first[tid] = u0
        ref_last[tid] = u1
        counts[tid, 1 if flag & 4 else 0] += 1
        last = lin_base[tid + 1] - lin_base[tid] - 1
        for w in range(min(pos >> 14, last), min((end - 1) >> 14, last) + 1):
            if lin_u[lin_base[tid] + w] > u0:
                lin_u[lin_base[tid] + w] = u0
        key = (np.int64(tid) << 16) | _get(buf, p + 14, 2)
        if runs > 0 and run_key[runs - 1] == key and run_end[runs - 1] == u0:
            run_end[runs - 1] = u1
        else:
            run_key[runs] = key
            run_beg[runs] = u0
            run_end[runs] = u1
            runs += 1
    return runs, no_coor
