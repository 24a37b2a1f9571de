"""S3 transfers through fetch/publish (boto3's transfer manager) over HTTP against the loopback S3 server, with
faults injected by the proxy in front of it: throttled and broken-off ranged GETs, an object
replaced between parts, a part refused during an upload, a Range header dropped."""

import base64
import logging
import os
import zlib

import pytest
from bench.s3_proxy import client

from hpc.files import MIB
from tasks.storage import s3 as storage
from tasks.storage.s3 import S3Settings, fetch, publish
from tasks.storage.uri import StorageError


@pytest.fixture
def big(tmp_path):
    """12.5 MiB of random bytes: three parts of 5 MiB."""
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(12 * MIB + MIB // 2))
    return path


def small_parts(endpoint, **extra):
    return S3Settings(endpoint_url=endpoint, multipart_threshold_mb=5, multipart_chunk_mb=5, **extra)


def sent(proxy, method):
    """The headers of each ``method`` request the proxy forwarded."""
    return [h for r, h in zip(proxy.requests, proxy.headers) if r.startswith(f"{method} ")]


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def log_lines(monkeypatch):
    """What fetch/publish log outside a Prefect run."""
    log, lines = logging.getLogger("helixflow.storage"), Lines()
    monkeypatch.setattr(log, "level", logging.INFO)
    monkeypatch.setattr(log, "handlers", [*log.handlers, lines])  # the old list comes back after the test
    return lines.lines


def test_multipart_upload_and_ranged_download_give_the_same_bytes(s3_proxy, s3_server, bucket, big, tmp_path,
                                                                  log_lines):
    settings = small_parts(s3_proxy.url)
    [uri] = publish([big], f"s3://{bucket}/in", settings)
    head = client(s3_server).head_object(Bucket=bucket, Key="in/big.bin")
    assert head["ETag"].endswith('-3"')  # three parts
    puts = sent(s3_proxy, "PUT")
    assert len(puts) == 3 and all("x-amz-checksum-crc32" in h for h in puts)  # each part with its CRC-32
    s3_proxy.requests.clear()
    s3_proxy.headers.clear()
    local = fetch(uri, tmp_path / "fsx", settings)
    assert local.read_bytes() == big.read_bytes()
    gets = sent(s3_proxy, "GET")
    assert len(gets) == 3 and {h["range"] for h in gets} == {  # one ranged GET per part
        f"bytes=0-{5 * MIB - 1}", f"bytes={5 * MIB}-{10 * MIB - 1}", f"bytes={10 * MIB}-"}
    assert [h["if-match"] for h in gets] == [head["ETag"]] * 3
    assert len(sent(s3_proxy, "HEAD")) == 2  # before (the ETag to pin) and after; the manager makes none
    done = [line.split(" 12.5 of 12.5 MiB (100%)")[0] for line in log_lines if "(100%)" in line]
    assert done == [f"s3://{bucket}/in/big.bin: uploaded", f"s3://{bucket}/in/big.bin: downloaded"], log_lines
    assert all(line.endswith(" MB/s") for line in log_lines)


def test_progress_is_logged_while_bytes_move(s3_proxy, bucket, big, tmp_path, log_lines, monkeypatch):
    monkeypatch.setattr(storage.TransferLog.__init__, "__defaults__", (0.0,))  # a line each time, not each 5 s
    [uri] = publish([big], f"s3://{bucket}/in", small_parts(s3_proxy.url))
    fetch(uri, tmp_path / "fsx", small_parts(s3_proxy.url))
    for what in ("uploaded", "downloaded"):
        lines = [line for line in log_lines if f": {what} " in line]
        assert len(lines) > 3 and "(100%)" in lines[-1] and "(100%)" not in lines[0], log_lines


def test_small_objects_move_in_one_request_with_if_match_and_checksum(s3_proxy, s3_server, bucket, tmp_path):
    src = tmp_path / "ref.fa"
    src.write_bytes(b">c\n" + b"ACGT" * 50_000 + b"\n")
    [uri] = publish([src], f"s3://{bucket}/in", small_parts(s3_proxy.url))
    [put] = sent(s3_proxy, "PUT")
    crc = base64.b64encode(zlib.crc32(src.read_bytes()).to_bytes(4, "big")).decode()
    assert put["x-amz-checksum-crc32"] == crc
    head = client(s3_server).head_object(Bucket=bucket, Key="in/ref.fa", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc  # stored with the object
    s3_proxy.requests.clear()
    s3_proxy.headers.clear()
    assert fetch(uri, tmp_path / "fsx", small_parts(s3_proxy.url)).read_bytes() == src.read_bytes()
    [get] = sent(s3_proxy, "GET")
    assert "range" not in get and get["if-match"] == head["ETag"]


@pytest.mark.parametrize("size", [0, 5 * MIB])  # empty; at the threshold, which "above" leaves whole
def test_empty_and_threshold_sized_objects_move_whole(s3_proxy, bucket, tmp_path, size):
    src = tmp_path / "obj.bin"
    src.write_bytes(os.urandom(size))
    [uri] = publish([src], f"s3://{bucket}/in", small_parts(s3_proxy.url))
    assert fetch(uri, tmp_path / "fsx", small_parts(s3_proxy.url)).read_bytes() == src.read_bytes()
    assert [r.split()[0] for r in s3_proxy.requests] == ["PUT", "HEAD", "GET", "HEAD"]


def test_checksums_can_be_turned_off_for_stores_that_refuse_them(s3_proxy, bucket, big, monkeypatch):
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    publish([big], f"s3://{bucket}/in", small_parts(s3_proxy.url))
    assert len(s3_proxy.headers) > 3
    assert not [h for h in s3_proxy.headers if any(k.startswith("x-amz-checksum") for k in h)]


def test_throttled_ranged_gets_are_retried(s3_proxy, s3_server, bucket, big, tmp_path):
    client(s3_server).upload_file(str(big), bucket, "big.bin")
    s3_proxy.slowdown = 4
    local = fetch(f"s3://{bucket}/big.bin", tmp_path, small_parts(s3_proxy.url, max_attempts=8))
    assert local.read_bytes() == big.read_bytes()
    assert s3_proxy.injected == 4


def test_a_part_whose_body_breaks_off_is_fetched_again(s3_proxy, s3_server, bucket, big, tmp_path):
    client(s3_server).upload_file(str(big), bucket, "big.bin")
    s3_proxy.truncate = 2
    local = fetch(f"s3://{bucket}/big.bin", tmp_path, small_parts(s3_proxy.url))
    assert s3_proxy.truncated == 2
    assert local.read_bytes() == big.read_bytes()
    assert len(sent(s3_proxy, "GET")) == 5  # three parts, two of them twice


def test_broken_bodies_beyond_the_attempts_fail_and_keep_nothing(s3_proxy, s3_server, bucket, big, tmp_path):
    client(s3_server).upload_file(str(big), bucket, "big.bin")
    s3_proxy.truncate = 100
    with pytest.raises(StorageError, match=f"s3://{bucket}/big.bin: a part's body broke off or stalled on every attempt"):
        fetch(f"s3://{bucket}/big.bin", tmp_path / "fsx", small_parts(s3_proxy.url, max_attempts=2))
    assert not [p for p in (tmp_path / "fsx").rglob("*") if p.is_file()]


def test_object_replaced_between_parts_fails_and_keeps_nothing(s3_proxy, s3_server, bucket, big, tmp_path):
    s3 = client(s3_server)
    s3.upload_file(str(big), bucket, "big.bin")
    s3_proxy.hook_at_get = 2
    s3_proxy.before_get = lambda: s3.put_object(Bucket=bucket, Key="big.bin", Body=b"another version")
    with pytest.raises(StorageError, match=f"s3://{bucket}/big.bin: object changed while it was read"):
        fetch(f"s3://{bucket}/big.bin", tmp_path / "fsx", small_parts(s3_proxy.url))
    assert not [p for p in (tmp_path / "fsx").rglob("*") if p.is_file()]


def test_a_refused_part_aborts_the_upload(s3_proxy, s3_server, bucket, big):
    s3_proxy.deny = "partNumber=2"
    with pytest.raises(StorageError, match=f"s3://{bucket}/out/big.bin: access denied"):
        publish([big], f"s3://{bucket}/out", small_parts(s3_proxy.url))
    s3 = client(s3_server)
    assert [r for r in s3_proxy.requests if r.startswith("DELETE ") and "uploadId=" in r]  # aborted...
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)  # ...so no parts are left to bill
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_a_store_that_ignores_range_is_refused_and_nothing_kept(s3_proxy, s3_server, bucket, big, tmp_path):
    client(s3_server).upload_file(str(big), bucket, "big.bin")
    s3_proxy.drop_range = True
    with pytest.raises(StorageError, match=r"asked for bytes \d+-\d+, the server sent 13107200 bytes.*multipart-threshold-mb"):
        fetch(f"s3://{bucket}/big.bin", tmp_path / "fsx", small_parts(s3_proxy.url))
    assert not [p for p in (tmp_path / "fsx").rglob("*") if p.is_file()]


def test_the_same_guarantees_hold_on_ceph_radosgw(tmp_path, big, monkeypatch):
    """Against a production store's gateway (a one-node Ceph, started by deployments/ceph-rgw/rgw.sh
    behind the proxy): parts carry their CRC-32, every GET its If-Match, which radosgw enforces
    when the object is replaced mid-read, and a refused part leaves no multipart upload."""
    import shutil
    import tempfile
    from pathlib import Path

    from bench.s3_proxy import FaultProxy

    from bench.s3_servers import RGW_KEYS, start_rgw, stop_rgw

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", RGW_KEYS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", RGW_KEYS[1])
    short = Path(tempfile.mkdtemp(prefix="hf-rgw-"))  # Ceph's admin socket paths must stay under 107 characters
    try:
        url = start_rgw(short, tmp_path / "rgw.log")
        # a session of its own: boto3's default one keeps the credentials an earlier test found
        proxy, s3 = FaultProxy(url), storage.s3_client(S3Settings(endpoint_url=url))
        try:
            s3.create_bucket(Bucket="pinned")
            settings = small_parts(proxy.url)
            [uri] = publish([big], "s3://pinned/in", settings)
            assert [h for h in sent(proxy, "PUT") if "x-amz-checksum-crc32" in h] == sent(proxy, "PUT") != []
            etag = s3.head_object(Bucket="pinned", Key="in/big.bin")["ETag"]
            proxy.requests.clear()
            proxy.headers.clear()
            assert fetch(uri, tmp_path / "fsx", settings).read_bytes() == big.read_bytes()
            assert [h["if-match"] for h in sent(proxy, "GET")] == [etag] * 3

            proxy.hook_at_get = proxy.gets + 2
            proxy.before_get = lambda: s3.put_object(Bucket="pinned", Key="in/big.bin", Body=b"another version")
            with pytest.raises(StorageError, match="changed while it was read.*did not match expected ETag"):
                fetch(uri, tmp_path / "again", settings)
            assert not [p for p in (tmp_path / "again").rglob("*") if p.is_file()]

            proxy.deny = "partNumber=2"
            with pytest.raises(StorageError, match="s3://pinned/out/big.bin: access denied"):
                publish([big], "s3://pinned/out", settings)
            assert not s3.list_multipart_uploads(Bucket="pinned").get("Uploads")
        finally:
            proxy.close()
    finally:
        stop_rgw(short)
        shutil.rmtree(short, ignore_errors=True)
