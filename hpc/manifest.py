"""Staging manifest and atomic file writes, shared by the stage task and the MPI job."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def _file_mode() -> int:
    """What a plain ``open(path, "w")`` would give: 0o666 less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()  # mkstemp makes 0o600 files; staged files must be readable by the job's user


class ManifestError(RuntimeError):
    """The staging manifest is missing, malformed, or disagrees with the files on disk."""


class StagingFullError(OSError):
    """The file system under the staging folder has no space left."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), FILE_MODE)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise StagingFullError(errno.ENOSPC, f"{path.parent}: no space left on the device while writing "
                                   f"{path.name} ({len(data)} bytes); free space there or choose another "
                                   "--staging-dir (the temp file was removed)") from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> str:
    """Write the arrays as one ``.npz`` (temp file + rename); returns the file's sha256."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getbuffer()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_entry(root: Path, path: Path, sha256: str | None = None, **extra: Any) -> dict[str, Any]:
    """Manifest row for one staged file: name relative to the staging folder, size, sha256
    (``sha256``: already known from the bytes just written; else read back)."""
    path = Path(path)
    return {
        "path": str(path.relative_to(root)),
        "bytes": path.stat().st_size,
        "sha256": sha256 or sha256_file(path),
        **extra,
    }


def write_manifest(root: Path, body: dict[str, Any]) -> Path:
    path = Path(root) / MANIFEST_NAME
    atomic_write_text(path, json.dumps({"version": MANIFEST_VERSION, **body}, indent=2))
    return path


def load_manifest(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from exc
    if manifest.get("version") != MANIFEST_VERSION:
        raise ManifestError(
            f"{path}: field 'version' is {manifest.get('version')!r}, expected {MANIFEST_VERSION}"
        )
    return manifest


def verify_entry(root: Path, entry: dict[str, Any]) -> Path:
    """Check one staged file against its manifest row; return its path."""
    path = Path(root) / entry["path"]
    if not path.is_file():
        raise ManifestError(f"{path}: listed in the manifest but missing")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise ManifestError(f"{path}: {size} bytes on disk, manifest says {entry['bytes']}")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise ManifestError(f"{path}: sha256 {digest} does not match manifest {entry['sha256']}")
    return path


def load_npz_verified(root: Path, entry: dict[str, Any]) -> dict[str, np.ndarray]:
    """Arrays of a staged .npz file, after checking it against its manifest row."""
    with np.load(verify_entry(root, entry), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
