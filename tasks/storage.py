"""Inputs and outputs as URIs: a local path, ``file://``, or ``s3://bucket/key``.

S3 goes through boto3: credentials from a prefect-aws ``S3Bucket`` or ``AwsCredentials``
block named in the settings (with the block's client parameters), or boto3's default
chain; an endpoint URL for S3-compatible stores;
retries with backoff on throttling and 5xx (botocore's ``adaptive`` mode); multipart
transfers above a threshold (``tasks.s3_transfer``). A download lands under the staging
folder (temp file + rename), never outside it, and fails when the object changes while it
is read.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field

from hpc.manifest import FILE_MODE
from tasks.s3_transfer import download, upload

MIB = 2**20


class StorageError(RuntimeError):
    """An input or output location that could not be used (now), with what was expected."""


class BadLocation(StorageError):
    """A location that retrying cannot fix: malformed, refused, missing, or access denied."""


class S3Settings(BaseModel):
    """How to reach S3 (or an S3-compatible store)."""

    model_config = ConfigDict(extra="forbid")
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint, e.g. http://127.0.0.1:9000")
    region: str | None = Field(None, description="AWS region (default: boto3's chain)")
    credentials_block: str | None = Field(None, description="name of a prefect-aws AwsCredentials block")
    bucket_block: str | None = Field(None, description="name of a prefect-aws S3Bucket block: its credentials and "
                                     "client parameters are used, and s3:// URIs must name its bucket")
    max_attempts: int = Field(8, ge=1, le=20, description="attempts per request (throttling and 5xx retried)")
    multipart_threshold_mb: int = Field(64, ge=5, description="objects above this move in parts")
    multipart_chunk_mb: int = Field(16, ge=5, description="part size")
    max_concurrency: int = Field(8, ge=1, le=64, description="parts in flight")


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


def s3_client(settings: S3Settings, bucket: str | None = None):
    """A boto3 S3 client. Credentials: the ``bucket_block`` (an S3Bucket block; ``bucket``,
    when given, must be its bucket), else the ``credentials_block`` (AwsCredentials), else
    boto3's default chain. A block's client parameters (an endpoint URL, say) apply unless
    the settings name their own."""
    from botocore.config import Config

    config = Config(retries={"max_attempts": settings.max_attempts, "mode": "adaptive"},
                    max_pool_connections=max(10, settings.max_concurrency))
    credentials = None
    if settings.bucket_block:
        from prefect_aws.s3 import S3Bucket

        block = S3Bucket.load(settings.bucket_block)
        if bucket is not None and bucket != block.bucket_name:
            raise BadLocation(f"s3://{bucket}: the S3Bucket block {settings.bucket_block!r} is for bucket "
                              f"{block.bucket_name!r}; name that bucket in the URI or choose another block")
        credentials = block.credentials
    elif settings.credentials_block:
        from prefect_aws import AwsCredentials

        credentials = AwsCredentials.load(settings.credentials_block)
    if credentials is None:
        import boto3

        session, params = boto3.session.Session(), {}
    else:
        session, params = credentials.get_boto3_session(), credentials.aws_client_parameters.get_params_override()
    params.pop("config", None)  # retries and pool size are ours
    params["endpoint_url"] = settings.endpoint_url or params.get("endpoint_url")
    params["region_name"] = settings.region or params.get("region_name")
    return session.client("s3", config=config, **params)


def _explain(exc: Exception, where: str) -> StorageError:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        meaning = {"NoSuchBucket": "bucket does not exist", "NoSuchKey": "no such key",
                   "404": "not found (no such bucket or key)", "403": "access denied",
                   "AccessDenied": "access denied", "PreconditionFailed": "object changed while it was read",
                   "412": "object changed while it was read"}.get(code, code)
        permanent = code in ("NoSuchBucket", "NoSuchKey", "404", "403", "AccessDenied", "InvalidAccessKeyId")
        return (BadLocation if permanent else StorageError)(f"{where}: {meaning} ({exc})")
    return StorageError(f"{where}: {exc}")


class TransferLog:
    """Log lines for one multipart transfer: every ``every`` seconds while parts land, and at
    the end, with the MB/s so far. Called from the transfer's threads."""

    def __init__(self, what: str, total: int, every: float = 5.0) -> None:
        try:  # into the Prefect run's log when there is one (this thread holds its context)
            from prefect import get_run_logger

            self.log = get_run_logger()
        except Exception:  # noqa: BLE001 - no run: plain logging
            self.log = logging.getLogger("helixflow.storage")
        self.what, self.total, self.every = what, total, every
        self.done, self.t0 = 0, time.perf_counter()
        self.last = self.t0
        self.lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self.lock:
            self.done += n
            now = time.perf_counter()
            if now - self.last >= self.every or self.done == self.total:
                self.last = now
                self.log.info("%s %.1f of %.1f MiB (%.0f%%), %.1f MB/s", self.what, self.done / MIB,
                              self.total / MIB, 100 * self.done / max(self.total, 1),
                              self.done / 1e6 / max(now - self.t0, 1e-9))


def fetch(uri: str, staging_dir: str | Path, settings: S3Settings | None = None) -> Path:
    """A local path for ``uri``: the file itself, or an S3 object downloaded under
    ``<staging_dir>/inputs/<bucket>/<key>`` (skipped when a copy with the same ETag is there)."""
    loc = parse_uri(uri)
    if not loc.is_s3:
        return loc.path
    settings = settings or S3Settings()
    root = (Path(staging_dir) / "inputs" / loc.bucket).resolve()
    dest = (root / safe_relative(loc.key)).resolve()
    if root not in dest.parents:
        raise BadLocation(f"{uri}: refused; its key would be written outside {root}")
    client = s3_client(settings, loc.bucket)
    try:
        head = client.head_object(Bucket=loc.bucket, Key=loc.key)
    except Exception as exc:  # noqa: BLE001 - explained with the URI
        raise _explain(exc, uri) from exc
    etag = head["ETag"]
    tag_file = dest.with_name(dest.name + ".etag")
    if dest.is_file() and tag_file.is_file() and tag_file.read_text() == etag and dest.stat().st_size == head["ContentLength"]:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        size = head["ContentLength"]
        whole = size <= settings.multipart_threshold_mb * MIB
        download(client, loc.bucket, loc.key, etag, size, Path(tmp), threads=settings.max_concurrency,
                 part_size=size if whole else settings.multipart_chunk_mb * MIB, attempts=settings.max_attempts,
                 progress=None if whole else TransferLog(f"{uri}: downloaded", size))
        after = client.head_object(Bucket=loc.bucket, Key=loc.key)
        if after["ETag"] != etag or Path(tmp).stat().st_size != head["ContentLength"]:
            raise StorageError(f"{uri}: object changed while it was read (ETag {etag} before, {after['ETag']} after); "
                               "nothing was kept, run again")
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, dest)
        tag_file.write_text(etag)
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _explain(exc, uri) from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest


def publish(files: list[Path], prefix_uri: str, settings: S3Settings | None = None) -> list[str]:
    """Upload ``files`` under an ``s3://bucket/prefix``; returns their URIs."""
    loc = parse_uri(prefix_uri)
    if not loc.is_s3:
        raise BadLocation(f"{prefix_uri}: not an s3:// URI")
    settings = settings or S3Settings()
    client = s3_client(settings, loc.bucket)
    prefix = loc.key.rstrip("/")
    uris = []
    for path in files:
        key = f"{prefix}/{path.name}" if prefix else path.name
        try:
            size, threshold = path.stat().st_size, settings.multipart_threshold_mb * MIB
            upload(client, path, loc.bucket, key, part_size=settings.multipart_chunk_mb * MIB, threshold=threshold,
                   threads=settings.max_concurrency,
                   progress=TransferLog(f"s3://{loc.bucket}/{key}: uploaded", size) if size > threshold else None)
        except Exception as exc:  # noqa: BLE001
            raise _explain(exc, f"s3://{loc.bucket}/{key}") from exc
        uris.append(f"s3://{loc.bucket}/{key}")
    return uris
