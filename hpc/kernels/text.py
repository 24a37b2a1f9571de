"""Numba kernels that write collect's text, SAM and PAF lines, from columns, into a byte
buffer the caller sized (:func:`sam_bound`, :func:`paf_bound`); each returns the bytes
written. No I/O.

Text fields arrive as fixed-width code arrays, NUL-padded at the end: read and contig names
as ``uint8`` rows (numpy's ``S`` layout), CIGARs as ``uint32`` rows (the ``U`` layout; a
CIGAR is ASCII). Bases arrive as codes (A=0, C=1, G=2, T=3, N=4) with per-read offsets.
"""

from __future__ import annotations

import numba
import numpy as np

from hpc.kernels.jit import NJIT

TAB, NL = 9, 10
STAR, EQUALS, MINUS, PLUS = 42, 61, 45, 43
BASE_CHARS = np.frombuffer(b"ACGTN", dtype=np.uint8)
COMPLEMENT_CHARS = np.frombuffer(b"TGCAN", dtype=np.uint8)
NUMBER_WIDTH = 21  # a signed 64-bit integer in decimal, with its sign
RNEXT_NONE, RNEXT_SAME = -1, -2  # SAM's RNEXT "*" and "="


@numba.njit(**NJIT)
def _width(row) -> int:
    n = row.shape[0]
    while n > 0 and row[n - 1] == 0:
        n -= 1
    return n


@numba.njit(**NJIT)
def _text(buf, p, row) -> int:
    n = _width(row)
    for k in range(n):
        buf[p + k] = row[k]
    return p + n


@numba.njit(**NJIT)
def _int(buf, p, v) -> int:
    if v < 0:
        buf[p] = MINUS
        p += 1
        v = -v
    digits = 1
    t = v // 10
    while t:
        digits += 1
        t //= 10
    q = p + digits
    while True:
        q -= 1
        buf[q] = 48 + v % 10
        v //= 10
        if v == 0:
            break
    return p + digits


@numba.njit(**NJIT)
def _tab_int(buf, p, v) -> int:
    """A tab, then ``v`` in decimal."""
    buf[p] = TAB
    return _int(buf, p + 1, v)


@numba.njit(**NJIT)
def _contig(buf, p, tnames, c) -> int:
    """A contig's name, or ``*`` (:data:`RNEXT_NONE`), or ``=`` (:data:`RNEXT_SAME`)."""
    if c >= 0:
        return _text(buf, p, tnames[c])
    buf[p] = STAR if c == RNEXT_NONE else EQUALS
    return p + 1


@numba.njit(**NJIT)
def _tag(buf, p, a, b, c, v) -> int:
    """``\\tXY:i:<v>`` (``a b c``: the tag's two letters and its type)."""
    buf[p] = TAB
    buf[p + 1] = a
    buf[p + 2] = b
    buf[p + 3] = 58
    buf[p + 4] = c
    buf[p + 5] = 58
    return _int(buf, p + 6, v)


@numba.njit(**NJIT)
def sam_text(buf, names, rg, tnames, rec_read, flag, ref, pos, mapq, clip_left, clip_right, cigars, rec_cigar,
             rnext, pnext, tlen, codes, offsets, lengths, quals, has_qual, nm, score) -> int:
    """One SAM line per record. ``ref``/``rnext``: a contig (row of ``tnames``), -1 for
    ``*``; ``rnext`` -2 for ``=``. ``pos``/``pnext`` are 1-based (0: none). ``rec_cigar``: the
    record's row of ``cigars`` (-1: an unmapped record: CIGAR ``*``, no NM/AS tags), soft clips
    ``clip_left``/``clip_right`` around it. A record with the reverse flag (0x10) carries the
    read reverse-complemented and its qualities reversed. ``rg``: the bytes after the tags
    (``\\tRG:Z:id``, or none)."""
    p = 0
    for k in range(rec_read.shape[0]):
        i = rec_read[k]
        p = _text(buf, p, names[i])
        p = _tab_int(buf, p, flag[k])
        buf[p] = TAB
        p = _contig(buf, p + 1, tnames, ref[k])
        p = _tab_int(buf, p, pos[k])
        p = _tab_int(buf, p, mapq[k])
        buf[p] = TAB
        p += 1
        c = rec_cigar[k]
        if c < 0:
            buf[p] = STAR
            p += 1
        else:
            if clip_left[k] > 0:
                p = _int(buf, p, clip_left[k])
                buf[p] = 83
                p += 1
            p = _text(buf, p, cigars[c])
            if clip_right[k] > 0:
                p = _int(buf, p, clip_right[k])
                buf[p] = 83
                p += 1
        buf[p] = TAB
        p = _contig(buf, p + 1, tnames, rnext[k])
        p = _tab_int(buf, p, pnext[k])
        p = _tab_int(buf, p, tlen[k])
        buf[p] = TAB
        p += 1
        o, n = offsets[i], lengths[i]
        reverse = (flag[k] & 16) != 0
        for j in range(n):
            buf[p + j] = COMPLEMENT_CHARS[codes[o + n - 1 - j]] if reverse else BASE_CHARS[codes[o + j]]
        p += n
        buf[p] = TAB
        p += 1
        if has_qual:
            for j in range(n):
                buf[p + j] = quals[o + n - 1 - j] if reverse else quals[o + j]
            p += n
        else:
            buf[p] = STAR
            p += 1
        if c >= 0:
            p = _tag(buf, p, 78, 77, 105, nm[k])  # NM:i:
            p = _tag(buf, p, 65, 83, 105, score[k])  # AS:i:
        for j in range(rg.shape[0]):
            buf[p + j] = rg[j]
        p += rg.shape[0]
        buf[p] = NL
        p += 1
    return p


@numba.njit(**NJIT)
def paf_text(buf, names, rec_read, qlen, q_start, q_end, reverse, tnames, tlens, contig, t_start, t_end, nmatch,
             block, mapq, primary, score, nm, cigars) -> int:
    """One PAF line per alignment (``cigars`` row k is record k's), with minimap2's tags
    ``tp:A:P``/``S``, ``AS:i``, ``NM:i`` and ``cg:Z``."""
    p = 0
    for k in range(rec_read.shape[0]):
        p = _text(buf, p, names[rec_read[k]])
        p = _tab_int(buf, p, qlen[k])
        p = _tab_int(buf, p, q_start[k])
        p = _tab_int(buf, p, q_end[k])
        buf[p] = TAB
        buf[p + 1] = MINUS if reverse[k] else PLUS
        buf[p + 2] = TAB
        p = _text(buf, p + 3, tnames[contig[k]])
        p = _tab_int(buf, p, tlens[contig[k]])
        for v in (t_start[k], t_end[k], nmatch[k], block[k], mapq[k]):
            p = _tab_int(buf, p, v)
        buf[p] = TAB
        p += 1
        for ch in (116, 112, 58, 65, 58):  # tp:A:
            buf[p] = ch
            p += 1
        buf[p] = 80 if primary[k] else 83  # P, S
        p = _tag(buf, p + 1, 65, 83, 105, score[k])
        p = _tag(buf, p, 78, 77, 105, nm[k])
        buf[p] = TAB
        p += 1
        for ch in (99, 103, 58, 90, 58):  # cg:Z:
            buf[p] = ch
            p += 1
        p = _text(buf, p, cigars[k])
        buf[p] = NL
        p += 1
    return p


def sam_bound(records: int, bases: int, name_width: int, tname_width: int, cigar_width: int, rg: int) -> int:
    """Bytes that ``records`` SAM lines of ``bases`` bases in all can take, at most."""
    return records * (name_width + 2 * tname_width + cigar_width + rg + 20 * NUMBER_WIDTH) + 2 * bases


def paf_bound(records: int, name_width: int, tname_width: int, cigar_width: int) -> int:
    """Bytes that ``records`` PAF lines can take, at most."""
    return records * (name_width + tname_width + cigar_width + 30 * NUMBER_WIDTH)


@numba.njit(**NJIT)
def _digits_back(row, end) -> int:
    """Start of the run of decimal digits ending before ``end`` (``end`` when there is none)."""
    while end > 0 and 48 <= row[end - 1] <= 57:
        end -= 1
    return end


@numba.njit(**NJIT)
def _value(row, start, end) -> int:
    v = 0
    for j in range(start, end):
        v = v * 10 + row[j] - 48
    return v


@numba.njit(**NJIT)
def parse_dwgsim(names, out) -> int:
    """dwgsim's read names, ``<contig>_<pos1>_<pos2>_<strand1>_<strand2>_<r1>_<r2>_<e:s:i>_<e:s:i>_<hex>``
    with an optional ``/1`` or ``/2``, parsed from the right (no field but the contig holds
    ``_``). ``out`` (int64, n x 6) gets per name: the contig's length in bytes, pos1, pos2
    (1-based), strand1, strand2 (1: reverse) and the mate suffix (0: none). Returns how many
    names parsed; the first that does not is where it stops."""
    for i in range(names.shape[0]):
        row = names[i]
        end = _width(row)
        mate = 0
        if end >= 2 and row[end - 2] == 47 and (row[end - 1] == 49 or row[end - 1] == 50):  # "/1", "/2"
            mate = row[end - 1] - 48
            end -= 2
        j = end
        while j > 0 and (48 <= row[j - 1] <= 57 or 97 <= row[j - 1] <= 102):  # [0-9a-f]+
            j -= 1
        if j == end or j == 0 or row[j - 1] != 95:
            return i
        end = j - 1
        for _ in range(2):  # \d+:\d+:\d+_ twice
            for part in range(3):
                j = _digits_back(row, end)
                if j == end or j == 0 or row[j - 1] != (95 if part == 2 else 58):
                    return i
                end = j - 1
        flags = np.zeros(4, dtype=np.int64)
        for f in range(3, -1, -1):  # [01]_ four times: strand1, strand2, then two more
            if end < 2 or not (row[end - 1] == 48 or row[end - 1] == 49) or row[end - 2] != 95:
                return i
            flags[f] = row[end - 1] - 48
            end -= 2
        for f in (2, 1):  # pos2, then pos1
            j = _digits_back(row, end)
            if j == end or j == 0 or row[j - 1] != 95:
                return i
            out[i, f] = _value(row, j, end)
            end = j - 1
        if end < 1:
            return i
        out[i, 0] = end
        out[i, 3] = flags[0]
        out[i, 4] = flags[1]
        out[i, 5] = mate
    return names.shape[0]


@numba.njit(**NJIT)
def prefix_hashes(names, widths, out) -> None:
    """FNV-1a (64-bit) of each name's first ``widths[i]`` bytes, into ``out``."""
    for i in range(names.shape[0]):
        h = np.uint64(0xCBF29CE484222325)
        for j in range(widths[i]):
            h = (h ^ np.uint64(names[i, j])) * np.uint64(0x100000001B3)
        out[i] = h
