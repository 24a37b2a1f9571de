"""Paired reads in one shard: mate 1 at even and mate 2 at odd positions, both under the
pair's name (a trailing ``/1`` or ``/2`` dropped, as SAM wants one QNAME per pair). Pure:
interleaving two encoded halves, and the checks that the mates stay in step."""

from __future__ import annotations

import numpy as np

from hpc.codec import pack_codes
from hpc.kernels.fastq import copy_runs
from tasks.genomics.encoding import EncodedShard, name_array, name_list
from tasks.genomics.fastx import FastxFormatError


def pair_name(name: str) -> str:
    """The pair's name of a mate's: without a trailing ``/1`` or ``/2``."""
    return name[:-2] if len(name) > 2 and name[-2] == "/" and name[-1] in "12" else name


def _interleave_rows(a: np.ndarray, b: np.ndarray, a_off: np.ndarray, b_off: np.ndarray, a_len: np.ndarray,
                     b_len: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-base arrays ``a`` and ``b`` (reads at offsets/lengths) gathered read by read, a's
    first: (values, lengths, offsets) of the interleaved reads."""
    n = a_len.shape[0]
    lengths = np.empty(2 * n, dtype=np.int32)
    lengths[0::2], lengths[1::2] = a_len, b_len
    src = np.empty(2 * n, dtype=np.int64)
    src[0::2], src[1::2] = a_off, b_off + a.shape[0]
    out_off = np.cumsum(lengths, dtype=np.int64) - lengths
    out = np.empty(int(lengths.sum()), dtype=a.dtype)
    copy_runs(np.concatenate((a, b)), src, lengths, out_off, out)
    return out, lengths, out_off


def check_mates(names1: list[str], names2: list[str], source1: str, source2: str, line1: int, line2: int,
                step: int = 4) -> list[str]:
    """The pairs' names, when read i of one side is the mate of read i of the other (equal
    names once ``/1`` ``/2`` are dropped); else FastxFormatError naming the first record
    where they part (``line*``: the first record's line; ``step``: lines per record)."""
    pairs = [pair_name(n) for n in names1]
    for i, (p, n2) in enumerate(zip(pairs, names2)):
        if pair_name(n2) != p:
            raise FastxFormatError(source2, line2 + step * i, f"read {n2!r} is not the mate of {names1[i]!r} "
                                   f"({source1}:{line1 + step * i}); expected R1 and R2 in the same order, "
                                   "names equal but for a trailing /1 and /2")
    if len(names1) != len(names2):
        short, long_, at = (source2, source1, len(names2)) if len(names2) < len(names1) else \
            (source1, source2, len(names1))
        raise FastxFormatError(short, None, f"ends after {at} reads of this part while {long_} has more; "
                               "expected R1 and R2 to hold the same number of reads")
    return pairs


def interleave(mate1: EncodedShard, mate2: EncodedShard, names: list[str]) -> EncodedShard:
    """One shard of pairs from the two halves (same read count, checked by the caller)."""
    codes, lengths, offsets = _interleave_rows(mate1.codes(), mate2.codes(), mate1.offsets, mate2.offsets,
                                               mate1.lengths, mate2.lengths)
    packed, nmask = pack_codes(codes)
    quals = None
    if mate1.quals is not None and mate2.quals is not None:
        quals, _, _ = _interleave_rows(mate1.quals, mate2.quals, mate1.offsets, mate2.offsets, mate1.lengths,
                                       mate2.lengths)
    both = name_array([n for n in names for _ in (0, 1)])
    return EncodedShard(both, lengths, offsets, packed, nmask, quals, mates=2)


def pair_interleaved(shard: EncodedShard, source: str, first_line: int) -> EncodedShard:
    """An interleaved file's shard (R1, R2, R1, R2 ...) as a shard of pairs: an even number of
    reads, each odd one the mate of the one before; else FastxFormatError naming the record."""
    names = name_list(shard.names) if isinstance(shard.names, np.ndarray) else list(shard.names)
    if len(names) % 2:
        raise FastxFormatError(source, first_line + 4 * (len(names) - 1),
                               f"read {names[-1]!r} has no mate: an interleaved file holds an even number of "
                               "records (R1, R2, R1, R2 ...)")
    pairs = check_mates(names[0::2], names[1::2], source, source, first_line, first_line + 4, step=8)
    both = name_array([p for p in pairs for _ in (0, 1)])
    return EncodedShard(both, shard.lengths, shard.offsets, shard.packed, shard.nmask, shard.quals, mates=2)
