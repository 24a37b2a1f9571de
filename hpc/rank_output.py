"""A rank's output file, ``rank_N-<attempt>.npz``: its rows, one member per shard written as
the shard is done (``rows@<shard>``: a structured array of :data:`COLUMNS`), then ``shards``,
the shards it holds rows of. Collect reads one shard's rows at a time, whatever the run's size.

One member a shard, not one a column: a reader's zip directory holds an entry of about 1.1 KB
per member, which over 19 columns came to 2 MiB in collect at 10M reads and would be some
65 MiB over the 3,100 shards of a 30x human genome."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hpc.files import NpzStream
from hpc.run_folder import rank_output

COORDS = ("score", "q_start", "q_end", "r_start", "r_end", "nmatch", "block", "nm")
COLUMNS = ("shard", "read", "strand", "contig", "wstart", "primary", "second", *COORDS, "cigar", "n_candidates",
           "mapq", "proper")


def empty_columns() -> dict[str, np.ndarray]:
    cols = {k: np.zeros(0, dtype=np.int64) for k in COLUMNS}
    cols["cigar"] = np.zeros(0, dtype=np.bytes_)
    return cols


def shard_key(shard: int) -> str:
    """A rank output's member: one shard's rows (``rows@12``)."""
    return f"rows@{shard}"


def as_records(columns: dict[str, np.ndarray]) -> np.ndarray:
    """A shard's :data:`COLUMNS` as one structured array, each column's type kept."""
    records = np.empty(columns["read"].shape[0], dtype=[(k, columns[k].dtype) for k in COLUMNS])
    for k in COLUMNS:
        records[k] = columns[k]
    return records


def write_rank_output(out_dir: Path, rank: int, parts: Iterable[tuple[int, dict[str, np.ndarray]]],
                      attempt: str = "0") -> tuple[Path, int]:
    """The rank's rows, shard by shard as ``parts`` yields them. Returns the file and how many
    rows it holds."""
    path = rank_output(out_dir, rank, attempt)
    shards, rows = [], 0
    with NpzStream(path) as out:
        for shard_no, columns in parts:
            out.add(shard_key(shard_no), as_records(columns))
            shards.append(shard_no)
            rows += int(columns["read"].shape[0])
            del columns  # not held while the next shard is aligned
        out.add("shards", np.array(shards, dtype=np.int64))
    return path, rows


def rank_shards(data) -> list[int]:
    """The shards a rank output holds rows of (``data``: its np.load)."""
    return [int(s) for s in data["shards"]]


def shard_rows(data, shard: int) -> dict[str, np.ndarray]:
    """One shard's rows from a rank output (``data``: its np.load): a view of the shard's
    records a column (every caller concatenates them, which copies once)."""
    records = data[shard_key(shard)]
    return {k: records[k] for k in COLUMNS}


def load_rank_output(path: Path) -> dict[str, np.ndarray]:
    """Every row of one rank output, its shards one after the other (tests, tools)."""
    with np.load(path, allow_pickle=False) as data:
        parts = [shard_rows(data, s) for s in rank_shards(data)]
    return {k: np.concatenate([p[k] for p in parts]) for k in COLUMNS} if parts else empty_columns()
