"""S3 access through boto3: the client, and fetching inputs and publishing outputs with boto3's transfer manager."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from hpc.files import FILE_MODE, MIB, atomic_write_text
from hpc.run_folder import inputs_dir
from tasks.storage.uri import BadLocation, StorageError, parse_uri, safe_relative


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


def s3_client(settings: S3Settings, bucket: str | None = None):
    """A boto3 S3 client. Credentials: the ``bucket_block`` (an S3Bucket block; ``bucket``,
    when given, must be its bucket), else the ``credentials_block`` (AwsCredentials), else
    boto3's default chain. A block's client parameters (an endpoint URL, say) apply unless
    the settings name their own."""
    from botocore.config import Config

    # adaptive retries back off on throttling and 5xx; one pooled connection per part in flight
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


def transfer_config(settings: S3Settings):
    """boto3's ``TransferConfig`` for ``settings``, for ``fetch``/``publish`` and the bench's reference."""
    from boto3.s3.transfer import TransferConfig

    # The classic (thread-pool) manager: boto3's CRT client needs awscrt, which is not installed.
    # s3transfer moves in parts from the threshold on; the setting says "above" it, hence + 1.
    # A part whose body breaks off is fetched again, as many times as a request is tried.
    return TransferConfig(multipart_threshold=settings.multipart_threshold_mb * MIB + 1,
                          multipart_chunksize=settings.multipart_chunk_mb * MIB, max_concurrency=settings.max_concurrency,
                          num_download_attempts=settings.max_attempts, preferred_transfer_client="classic")


class WrongRange(RuntimeError):
    """A ranged GET answered with more bytes than it asked for."""


@contextmanager
def _pinned_gets(client, etag: str):
    """While open, every GetObject of ``client`` carries ``If-Match: etag``, and a ranged one
    answered with more bytes than asked for fails."""

    def before(params, context, **_) -> None:
        # s3transfer puts If-Match on ranged GETs only, not on the GET of a whole object
        params.setdefault("IfMatch", etag)
        context["helixflow_range"] = params.get("Range")

    def after(http_response, parsed, context, **_) -> None:
        # s3transfer checks a Content-Range when there is one; a store or proxy that ignores
        # Range sends none, and the whole object would be written at each part's offset
        asked = context.get("helixflow_range")
        if not asked or http_response.status_code >= 300:
            return
        first, _, last = asked.removeprefix("bytes=").partition("-")
        if last and parsed.get("ContentLength", 0) > int(last) - int(first) + 1:
            parsed["Body"].close()
            raise WrongRange(f"asked for bytes {first}-{last}, the server sent {parsed.get('ContentLength')} bytes "
                             f"(Content-Range {parsed.get('ContentRange')!r}); a store or proxy that ignores Range "
                             "cannot serve multipart downloads: raise --multipart-threshold-mb above the size")

    hooks = {"before-parameter-build.s3.GetObject": before, "after-call.s3.GetObject": after}
    for event, hook in hooks.items():
        client.meta.events.register(event, hook, unique_id=f"helixflow-{event}")
    try:
        yield
    finally:  # a client used again must not pin its next download to this ETag
        for event in hooks:
            client.meta.events.unregister(event, unique_id=f"helixflow-{event}")


class _Known:
    """An s3transfer subscriber giving the size and ETag from our HEAD, so the manager makes
    none of its own and pins its ranged GETs to the ETag the download began with."""

    def __init__(self, size: int, etag: str) -> None:
        self.size, self.etag = size, etag

    def on_queued(self, future, **_) -> None:
        future.meta.provide_transfer_size(self.size)
        future.meta.provide_object_etag(self.etag)


def _explain(exc: Exception, where: str) -> StorageError:
    from botocore.exceptions import ClientError
    from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError

    if isinstance(exc, S3DownloadFailedError):  # s3transfer's word for a GET that If-Match refused
        return StorageError(f"{where}: object changed while it was read ({exc}); nothing was kept, run again")
    if isinstance(exc, RetriesExceededError):
        return StorageError(f"{where}: a part's body broke off or stalled on every attempt ({exc.last_exception})")
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
    """An s3transfer subscriber logging one multipart transfer: every ``every`` seconds while
    bytes move, and at the end, with the MB/s so far. Called from the transfer's threads."""

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

    def on_progress(self, bytes_transferred: int, **_) -> None:
        # negative when a broken-off part is fetched again
        with self.lock:
            self.done += bytes_transferred
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
    from s3transfer.manager import TransferManager  # 0.2 s of imports, for S3 only
    settings = settings or S3Settings()
    root = inputs_dir(staging_dir, loc.bucket)
    dest = (root / safe_relative(loc.key)).resolve()
    if root not in dest.parents:
        raise BadLocation(f"{uri}: refused; its key would be written outside {root}")
    client = s3_client(settings, loc.bucket)
    try:
        head = client.head_object(Bucket=loc.bucket, Key=loc.key)
    except Exception as exc:  # noqa: BLE001 - explained with the URI
        raise _explain(exc, uri) from exc
    etag, size = head["ETag"], head["ContentLength"]
    tag_file = dest.with_name(dest.name + ".etag")
    if dest.is_file() and tag_file.is_file() and tag_file.read_text() == etag and dest.stat().st_size == size:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # our own temp file beside the destination, renamed only once the object is known whole
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        subscribers = [_Known(size, etag)]
        if size > settings.multipart_threshold_mb * MIB:
            subscribers.append(TransferLog(f"{uri}: downloaded", size))
        with (os.fdopen(fd, "wb") as out, _pinned_gets(client, etag),
              TransferManager(client, transfer_config(settings)) as manager):
            manager.download(loc.bucket, loc.key, out, subscribers=subscribers).result()
        # a store that ignores If-Match is still caught if the object changed meanwhile
        after = client.head_object(Bucket=loc.bucket, Key=loc.key)
        if after["ETag"] != etag or Path(tmp).stat().st_size != size:
            raise StorageError(f"{uri}: object changed while it was read (ETag {etag} before, {after['ETag']} after); "
                               "nothing was kept, run again")
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, dest)
        atomic_write_text(tag_file, etag)  # after the data: a crash between leaves a stale tag, so a refetch
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _explain(exc, uri) from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest


def publish(files: list[Path], prefix_uri: str, settings: S3Settings | None = None) -> list[str]:
    """Upload ``files`` under an ``s3://bucket/prefix``; returns their URIs. A multipart upload
    that fails is aborted by s3transfer (no parts left to bill); each request carries a CRC-32
    unless ``AWS_REQUEST_CHECKSUM_CALCULATION=when_required`` (for stores that refuse checksums)."""
    from s3transfer.manager import TransferManager

    loc = parse_uri(prefix_uri)
    if not loc.is_s3:
        raise BadLocation(f"{prefix_uri}: not an s3:// URI")
    settings = settings or S3Settings()
    client = s3_client(settings, loc.bucket)
    prefix = loc.key.rstrip("/")
    uris = []
    with TransferManager(client, transfer_config(settings)) as manager:
        for path in files:
            key = f"{prefix}/{path.name}" if prefix else path.name
            uri = f"s3://{loc.bucket}/{key}"
            try:
                size = path.stat().st_size
                log = [TransferLog(f"{uri}: uploaded", size)] if size > settings.multipart_threshold_mb * MIB else []
                manager.upload(str(path), loc.bucket, key, subscribers=log).result()
            except Exception as exc:  # noqa: BLE001
                raise _explain(exc, uri) from exc
            uris.append(uri)
    return uris
