"""The reference index cached on the staging folder, keyed by the reference's checksum.

``<staging>/index/<sha256[:16]>-k<k>-w<w>.npz`` holds the index arrays; the JSON beside it
holds that file's own sha256 and size, written after it (temp file + rename), so a reader
sees either a complete, verified index or none. A file that fails the check is rebuilt.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hpc.files import atomic_write_text, save_npz_atomic
from hpc.manifest import ManifestError, file_entry, load_npz_verified
from hpc.run_folder import index_stem
from tasks.genomics.seeding import ReferenceIndex

CACHE_VERSION = 1


def cache_paths(staging_dir: str | Path, reference_sha256: str, k: int, w: int) -> tuple[Path, Path]:
    stem = index_stem(staging_dir, reference_sha256, k, w)
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def save_index(staging_dir: str | Path, reference_sha256: str, index: ReferenceIndex) -> Path:
    data, meta = cache_paths(staging_dir, reference_sha256, index.k, index.w)
    save_npz_atomic(data, names=np.array(index.names, dtype=np.str_), lengths=index.lengths, starts=index.starts,
                    codes=index.codes, kmers=index.kmers, positions=index.positions,
                    kw=np.array([index.k, index.w], dtype=np.int64))
    entry = file_entry(data.parent, data)
    atomic_write_text(meta, json.dumps({"version": CACHE_VERSION, "reference_sha256": reference_sha256,
                                        "k": index.k, "w": index.w, "file": entry}, indent=2))
    return data


def load_index(staging_dir: str | Path, reference_sha256: str, k: int, w: int) -> ReferenceIndex | None:
    """The cached index, or None when there is none or it does not verify."""
    data, meta = cache_paths(staging_dir, reference_sha256, k, w)
    if not meta.is_file():
        return None
    try:
        body = json.loads(meta.read_text())
        if body.get("version") != CACHE_VERSION or body.get("reference_sha256") != reference_sha256:
            return None
        arrays = load_npz_verified(data.parent, body["file"])
    except (ManifestError, OSError, ValueError, KeyError):
        return None
    k_, w_ = (int(x) for x in arrays["kw"])
    return ReferenceIndex([str(n) for n in arrays["names"]], arrays["lengths"], arrays["starts"], arrays["codes"],
                          k_, arrays["kmers"], arrays["positions"], w_)
