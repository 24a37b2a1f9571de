"""Numba kernels behind :mod:`tasks.genomics.chunks`: cutting a FASTQ stream at record
boundaries, and encoding a chunk of strict four-line records into 2-bit packed bases in one
pass, with an exact decode check. No I/O.

The packed layout is :func:`hpc.codec.pack_codes`'s: four bases a byte, the first in the
high bits; N is packed as A and flagged in a 1-bit mask, eight bases a byte, first in the
high bit (``np.packbits`` order).
"""

from __future__ import annotations

import numba
import numpy as np

from hpc.kernels.jit import NJIT

NL = 10
CR = 13


@numba.njit(**NJIT)
def cut_block(block, base, want, limit, state, ends, recs):
    """Find chunk ends in ``block`` (stream offset ``base``). A chunk is ``want`` records,
    fewer when its bytes would pass ``limit`` (at least one record).

    ``state`` carries [newlines mod 4, chunk start, records in chunk, last record end]
    between blocks. Writes the end offset and record count of each chunk closed here into
    ``ends`` / ``recs`` (sized for the worst case) and returns how many."""
    lines, start, nrec, last = state[0], state[1], state[2], state[3]
    n = block.shape[0]
    count = 0
    for i in range(n):  # vectorized; most blocks close no chunk and need nothing more
        count += block[i] == NL
    whole = (lines + count) // 4
    if nrec + whole < want and base + n - start <= limit:
        if whole:  # the end of the last whole record: skip the lines of the record still open
            skip = (lines + count) % 4
            i = n - 1
            while block[i] != NL or skip:
                skip -= block[i] == NL
                i -= 1
            last = base + i + 1
        state[0], state[2], state[3] = (lines + count) % 4, nrec + whole, last
        return 0
    out = 0
    for i in range(n):
        if block[i] != NL:
            continue
        lines += 1
        if lines < 4:
            continue
        lines = 0
        end = base + i + 1
        if end - start > limit and nrec > 0:  # this record would overflow: close before it
            ends[out] = last
            recs[out] = nrec
            out += 1
            start = last
            nrec = 0
        nrec += 1
        last = end
        if nrec == want or end - start > limit:
            ends[out] = end
            recs[out] = nrec
            out += 1
            start = end
            nrec = 0
    state[0], state[1], state[2], state[3] = lines, start, nrec, last
    return out


@numba.njit(**NJIT)
def encode_records(buf, code_lut):
    """One pass over strict four-line FASTQ. ``code_lut`` maps a byte to its base code + 1
    (A=1, C=2, G=3, T=4, N=5; 0 for anything that is not a base).

    Returns (ok, name starts, name ends, sequence starts, lengths, packed, nmask). ``ok``
    is False at the first thing the fast path does not accept: a header without ``@`` or
    name (or with a NUL in it), an empty sequence, a character that is not a base, a
    separator without ``+``, a quality line of another length, a record cut short, blank
    lines."""
    n = buf.shape[0]
    # A record takes at least 9 bytes ("@r\nA\n+\nI\n"), so this bounds the reads without a
    # pass to count lines; np.empty touches no page of the unused part (and Numba's
    # np.zeros would zero-fill every page)
    most = n // 9 + 1
    name_s = np.empty(most, dtype=np.int64)
    name_e = np.empty(most, dtype=np.int64)
    seq_s = np.empty(most, dtype=np.int64)
    lengths = np.empty(most, dtype=np.int32)
    packed = np.empty(n // 8 + 1, dtype=np.uint8)  # a record has at least 2 bytes per base
    nmask = np.empty(n // 16 + 1, dtype=np.uint8)
    fail = (False, name_s[:0], name_e[:0], seq_s[:0], lengths[:0], packed[:0], nmask[:0])
    pos = 0
    nb = 0
    acc = 0  # the packed byte being filled
    nacc = 0  # the N-mask byte being filled
    r = 0
    while pos < n:
        if buf[pos] != 64:  # header: @name [description]
            return fail
        j = pos + 1
        while j < n and buf[j] != NL and buf[j] != 32 and buf[j] != 9 and buf[j] != CR:
            if buf[j] == 0:
                return fail
            j += 1
        if j == pos + 1:
            return fail
        name_s[r] = pos + 1
        name_e[r] = j
        while j < n and buf[j] != NL:
            j += 1
        pos = j + 1
        s = pos  # sequence: find its end, then pack it
        while pos < n and buf[pos] != NL:
            pos += 1
        se = pos - 1 if pos > s and buf[pos - 1] == CR else pos
        i = s
        while i < se:
            if nb & 3 == 0 and i + 4 <= se:  # four bases, one packed byte
                c0 = code_lut[buf[i]]
                c1 = code_lut[buf[i + 1]]
                c2 = code_lut[buf[i + 2]]
                c3 = code_lut[buf[i + 3]]
                if c0 == 0 or c1 == 0 or c2 == 0 or c3 == 0:
                    return fail
                packed[nb >> 2] = (((c0 - 1) & 3) << 6) | (((c1 - 1) & 3) << 4) | (((c2 - 1) & 3) << 2) | ((c3 - 1) & 3)
                nacc = (nacc << 4) | ((c0 == 5) << 3) | ((c1 == 5) << 2) | ((c2 == 5) << 1) | (c3 == 5)
                nb += 4
                i += 4
            else:  # one base: up to a byte boundary, and the last few
                c = code_lut[buf[i]]
                if c == 0:
                    return fail
                nacc = (nacc << 1) | (c == 5)
                acc = (acc << 2) | ((c - 1) & 3)  # N (code 4) packs as A
                nb += 1
                i += 1
                if nb & 3 == 0:
                    packed[(nb >> 2) - 1] = acc
                    acc = 0
            if nb & 7 == 0:
                nmask[(nb >> 3) - 1] = nacc
                nacc = 0
        length = se - s
        if length == 0 or pos >= n:
            return fail
        pos += 1
        if pos >= n or buf[pos] != 43:  # separator: + [name]
            return fail
        while pos < n and buf[pos] != NL:
            pos += 1
        pos += 1
        q = pos  # quality: as many characters as bases, none of them a line end
        e = q + length
        if e > n:
            return fail
        newline = False
        for i in range(q, e):
            newline |= buf[i] == NL
        if newline:
            return fail
        if e < n and buf[e] == CR:
            e += 1
        if e < n and buf[e] != NL:
            return fail
        pos = e + 1
        seq_s[r] = s
        lengths[r] = length
        r += 1
    if r == 0:
        return fail
    if nb & 3:
        packed[nb >> 2] = acc << (2 * (4 - (nb & 3)))
    if nb & 7:
        nmask[nb >> 3] = nacc << (8 - (nb & 7))
    return True, name_s[:r], name_e[:r], seq_s[:r], lengths[:r], packed[: (nb + 3) // 4], nmask[: (nb + 7) // 8]


@numba.njit(**NJIT)
def gather_names(buf, name_s, name_e):
    """The names as rows of a (reads, longest name) uint8 array, NUL-padded."""
    width = 1
    for r in range(name_s.shape[0]):
        width = max(width, name_e[r] - name_s[r])
    out = np.zeros((name_s.shape[0], width), dtype=np.uint8)
    for r in range(name_s.shape[0]):
        for j in range(name_e[r] - name_s[r]):
            out[r, j] = buf[name_s[r] + j]
    return out


@numba.njit(**NJIT)
def name_hashes_of_rows(rows):
    """64-bit FNV-1a of each row of a NUL-padded (reads, width) uint8 array, up to its first
    NUL: equal names hash equally whatever the width of the array they sit in."""
    out = np.empty(rows.shape[0], dtype=np.uint64)
    for r in range(rows.shape[0]):
        h = np.uint64(14695981039346656037)
        for j in range(rows.shape[1]):
            c = rows[r, j]
            if c == 0:
                break
            h = (h ^ np.uint64(c)) * np.uint64(1099511628211)
        out[r] = h
    return out


@numba.njit(**NJIT)
def first_mismatch(buf, seq_s, lengths, packed, nmask, normalize, quads, letters):
    """Decode every base from ``packed`` (``quads``: a packed byte -> its four letters) and
    ``nmask`` (N) into ``letters`` (scratch, at least 4 per packed byte), and compare each
    with the normalized input byte (``normalize``) of the read's sequence at ``seq_s`` in
    ``buf``; the first read that does not decode back, or -1."""
    for j in range(packed.shape[0]):
        p = packed[j]
        for t in range(4):
            letters[4 * j + t] = quads[p, t]
    for j in range(nmask.shape[0]):
        m = nmask[j]
        if m:
            for t in range(8):
                if (m >> (7 - t)) & 1:
                    letters[8 * j + t] = 78  # N
    nb = 0
    for r in range(seq_s.shape[0]):
        s = seq_s[r]
        for i in range(lengths[r]):
            got = letters[nb + i]
            if got != buf[s + i] and got != normalize[buf[s + i]]:  # upper-case ACGT needs no lookup
                return r
        nb += lengths[r]
    return -1


@numba.njit(**NJIT)
def copy_runs(src, src_start, lengths, out_start, out):
    """``out[out_start[i]:][:lengths[i]] = src[src_start[i]:][:lengths[i]]`` for every run
    ``i``: a gather of whole reads (bases, qualities) without a per-byte index array."""
    for i in range(lengths.shape[0]):
        o, f = out_start[i], src_start[i]
        out[o:o + lengths[i]] = src[f:f + lengths[i]]  # a slice copy: about 1.7x a loop of bytes
