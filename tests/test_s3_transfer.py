"""Multipart transfers (tasks.storage.s3_transfer) over HTTP against the loopback S3 server, with
faults injected by the proxy in front of it: throttled and broken-off ranged GETs, an object
replaced between parts, a part refused during an upload."""

import base64
import logging
import os

import pytest
from botocore.httpchecksum import Crc32Checksum

from s3_proxy import client
from tasks.storage.s3_transfer import MAX_PARTS, crc32_b64, plan_parts
from tasks.storage.s3 import S3Settings, fetch, publish
from tasks.storage.uri import StorageError
from hpc.files import MIB


@pytest.fixture
def big(tmp_path):
    """12.5 MiB of random bytes: three parts of 5 MiB."""
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(12 * MIB + MIB // 2))
    return path


def small_parts(endpoint, **extra):
    return S3Settings(endpoint_url=endpoint, multipart_threshold_mb=5, multipart_chunk_mb=5, **extra)


def test_parts_cover_the_object_in_order_and_within_the_part_limit():
    assert plan_parts(0, 5) == [(0, 0)]
    assert plan_parts(1, 5) == [(0, 1)]
    assert plan_parts(10, 5) == [(0, 5), (5, 5)]
    assert plan_parts(11, 5) == [(0, 5), (5, 5), (10, 1)]
    huge = 5 * MAX_PARTS + 7
    parts = plan_parts(huge, 5)
    assert len(parts) <= MAX_PARTS
    assert sum(n for _, n in parts) == huge
    assert all(off == prev_off + prev_n for (prev_off, prev_n), (off, _) in zip(parts, parts[1:]))


def test_part_checksum_is_the_one_botocore_would_send():
    data = os.urandom(3 * MIB + 5)
    theirs = Crc32Checksum()
    theirs.update(data)
    assert crc32_b64(data) == base64.b64encode(theirs.digest()).decode()
    assert crc32_b64(bytearray(data)) == crc32_b64(data)


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_multipart_upload_and_ranged_download_give_the_same_bytes(s3_proxy, s3_server, bucket, big, tmp_path,
                                                                  monkeypatch):
    settings = small_parts(s3_proxy.url)
    log, lines = logging.getLogger("helixflow.storage"), Lines()
    monkeypatch.setattr(log, "level", logging.INFO)
    monkeypatch.setattr(log, "handlers", [*log.handlers, lines])  # the old list comes back after the test
    [uri] = publish([big], f"s3://{bucket}/in", settings)
    head = client(s3_server).head_object(Bucket=bucket, Key="in/big.bin", ChecksumMode="ENABLED")
    assert head["ETag"].endswith('-3"')  # three parts
    puts = [h for r, h in zip(s3_proxy.requests, s3_proxy.headers) if r.startswith("PUT ")]
    assert len(puts) == 3 and all("x-amz-checksum-crc32" in h for h in puts)  # each part with its CRC-32
    s3_proxy.requests.clear()
    s3_proxy.headers.clear()
    local = fetch(uri, tmp_path / "fsx", settings)
    assert local.read_bytes() == big.read_bytes()
    gets = [h for r, h in zip(s3_proxy.requests, s3_proxy.headers) if r.startswith("GET ")]
    assert len(gets) == 3 and {h["range"] for h in gets} == {  # one ranged GET per part
        f"bytes=0-{5 * MIB - 1}", f"bytes={5 * MIB}-{10 * MIB - 1}", f"bytes={10 * MIB}-{big.stat().st_size - 1}"}
    assert {h["if-match"] for h in gets} == {head["ETag"]}
    done = [line.split(" 12.5 of 12.5 MiB (100%)")[0] for line in lines.lines if "(100%)" in line]
    assert done == [f"s3://{bucket}/in/big.bin: uploaded", f"s3://{bucket}/in/big.bin: downloaded"], lines.lines


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


def test_broken_bodies_beyond_the_attempts_fail_and_keep_nothing(s3_proxy, s3_server, bucket, big, tmp_path):
    client(s3_server).upload_file(str(big), bucket, "big.bin")
    s3_proxy.truncate = 100
    with pytest.raises(StorageError, match=f"s3://{bucket}/big.bin"):
        fetch(f"s3://{bucket}/big.bin", tmp_path / "fsx", small_parts(s3_proxy.url, max_attempts=2))
    assert not [p for p in (tmp_path / "fsx").rglob("*") if p.is_file()]


def test_object_replaced_between_parts_fails_and_keeps_nothing(s3_proxy, s3_server, bucket, big, tmp_path):
    s3 = client(s3_server)
    s3.upload_file(str(big), bucket, "big.bin")
    s3_proxy.hook_at_get = 2
    s3_proxy.before_get = lambda: s3.put_object(Bucket=bucket, Key="big.bin", Body=b"another version")
    with pytest.raises(StorageError, match="changed while it was read"):
        fetch(f"s3://{bucket}/big.bin", tmp_path / "fsx", small_parts(s3_proxy.url))
    assert not [p for p in (tmp_path / "fsx").rglob("*") if p.is_file()]


def test_a_refused_part_aborts_the_upload(s3_proxy, s3_server, bucket, big):
    s3_proxy.deny = "partNumber=2"
    with pytest.raises(StorageError, match="access denied"):
        publish([big], f"s3://{bucket}/out", small_parts(s3_proxy.url))
    s3 = client(s3_server)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)  # aborted: no parts left to bill
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_a_store_that_ignores_range_is_refused_and_nothing_kept(s3_proxy, s3_server, bucket, big, tmp_path):
    client(s3_server).upload_file(str(big), bucket, "big.bin")
    s3_proxy.drop_range = True
    with pytest.raises(StorageError, match=r"asked for bytes \d+-\d+, the server sent 13107200 bytes.*multipart-threshold-mb"):
        fetch(f"s3://{bucket}/big.bin", tmp_path / "fsx", small_parts(s3_proxy.url))
    assert not [p for p in (tmp_path / "fsx").rglob("*") if p.is_file()]
