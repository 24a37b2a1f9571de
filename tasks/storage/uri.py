"""Where inputs come from and outputs go: a local path, ``file://``, or ``s3://bucket/key``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse


class StorageError(RuntimeError):
    """An input or output location that could not be used (now), with what was expected."""


class BadLocation(StorageError):
    """A location that retrying cannot fix: malformed, refused, missing, or access denied."""


@dataclass(frozen=True)
class Location:
    scheme: str  # "file" or "s3"
    path: Path | None = None
    bucket: str = ""
    key: str = ""

    @property
    def is_s3(self) -> bool:
        return self.scheme == "s3"


def parse_uri(uri: str | Path) -> Location:
    text = str(uri)
    parsed = urlparse(text)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise BadLocation(f"{text}: no bucket; expected s3://bucket/key")
        return Location("s3", bucket=parsed.netloc, key=parsed.path.lstrip("/"))
    if parsed.scheme == "file":
        return Location("file", path=Path(unquote(parsed.path)))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and text[1:2] == ":"):
        return Location("file", path=Path(text))
    raise BadLocation(f"{text}: unsupported URI scheme {parsed.scheme!r}; expected a local path, file:// or s3://")


def safe_relative(key: str) -> PurePosixPath:
    """An S3 key as a relative path that cannot leave the folder it is joined to."""
    parts = key.split("/")
    if not key or any(p in ("..", ".", "") for p in parts) or "\\" in key:
        raise BadLocation(f"S3 key {key!r}: refused; expected a relative key without '..' or absolute parts "
                           "(nothing is written outside the staging folder)")
    return PurePosixPath(*parts)
