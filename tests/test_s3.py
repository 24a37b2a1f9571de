"""S3 in and out, over HTTP against moto's S3 server on loopback (through boto3), with
faults injected by a small proxy."""

import gzip

import pytest
from bench.s3_proxy import client

from tasks.storage.s3 import S3Settings, fetch, publish
from tasks.storage.uri import StorageError, parse_uri, safe_relative


def test_uris():
    assert parse_uri("s3://b/k/x.fq.gz").key == "k/x.fq.gz"
    assert parse_uri("file:///data/r.fq").path.as_posix() == "/data/r.fq"
    assert parse_uri("reads.fq").path.as_posix() == "reads.fq"
    with pytest.raises(StorageError, match="unsupported URI scheme 'gs'"):
        parse_uri("gs://b/k")
    with pytest.raises(StorageError, match="no bucket"):
        parse_uri("s3:///k")
    for key in ("../escape.fq", "a/../../b", "/abs/key", "a//b", ""):
        with pytest.raises(StorageError, match="refused"):
            safe_relative(key)


def test_round_trip_multipart_and_reuse(s3_server, bucket, tmp_path):
    settings = S3Settings(endpoint_url=s3_server, multipart_threshold_mb=5, multipart_chunk_mb=5)
    src = tmp_path / "reads.fq.gz"
    src.write_bytes(gzip.compress(b"@r\nACGT\n+\nIIII\n" * 400_000, compresslevel=0))  # ~6.8 MB
    [uri] = publish([src], f"s3://{bucket}/in", settings)
    assert uri == f"s3://{bucket}/in/reads.fq.gz"
    etag = client(s3_server).head_object(Bucket=bucket, Key="in/reads.fq.gz")["ETag"]
    assert "-" in etag  # a multipart upload's ETag
    local = fetch(uri, tmp_path / "fsx", settings)
    assert local == (tmp_path / "fsx" / "inputs" / bucket / "in" / "reads.fq.gz").resolve()
    assert local.read_bytes() == src.read_bytes()
    mtime = local.stat().st_mtime_ns
    assert fetch(uri, tmp_path / "fsx", settings).stat().st_mtime_ns == mtime  # same ETag: not fetched again


def test_missing_bucket_and_key_name_the_uri(s3_server, bucket, tmp_path):
    settings = S3Settings(endpoint_url=s3_server)
    with pytest.raises(StorageError, match=r"s3://no-such-bucket-x/k\.fq: not found"):
        fetch("s3://no-such-bucket-x/k.fq", tmp_path, settings)
    with pytest.raises(StorageError, match=rf"s3://{bucket}/missing\.fq: not found"):
        fetch(f"s3://{bucket}/missing.fq", tmp_path, settings)
    assert not list(tmp_path.rglob("*.fq"))


def test_key_with_dotdot_writes_nothing_outside_staging(s3_server, bucket, tmp_path):
    client(s3_server).put_object(Bucket=bucket, Key="a/../../escape.fq", Body=b">r\nACGT\n")
    with pytest.raises(StorageError, match="refused"):
        fetch(f"s3://{bucket}/a/../../escape.fq", tmp_path / "fsx", S3Settings(endpoint_url=s3_server))
    assert not list(tmp_path.rglob("escape.fq"))


def test_throttling_is_retried_and_recovers(s3_proxy, bucket, tmp_path, s3_server):
    client(s3_server).put_object(Bucket=bucket, Key="r.fa", Body=b">c\nACGTACGT\n")
    s3_proxy.slowdown = 3
    local = fetch(f"s3://{bucket}/r.fa", tmp_path, S3Settings(endpoint_url=s3_proxy.url, max_attempts=6))
    assert local.read_bytes() == b">c\nACGTACGT\n"
    assert s3_proxy.injected == 3 and s3_proxy.slowdown == 0


def test_throttling_beyond_the_retry_budget_fails_clearly(s3_proxy, bucket, tmp_path, s3_server):
    client(s3_server).put_object(Bucket=bucket, Key="r.fa", Body=b">c\nACGT\n")
    s3_proxy.slowdown = 10
    with pytest.raises(StorageError, match="SlowDown"):
        fetch(f"s3://{bucket}/r.fa", tmp_path, S3Settings(endpoint_url=s3_proxy.url, max_attempts=2))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_access_denied(s3_proxy, bucket, tmp_path):
    s3_proxy.deny = "secret"
    with pytest.raises(StorageError, match="access denied|403"):
        fetch(f"s3://{bucket}/secret.fq", tmp_path, S3Settings(endpoint_url=s3_proxy.url))


def test_object_changed_mid_read_keeps_nothing(s3_proxy, bucket, tmp_path, s3_server):
    s3 = client(s3_server)
    s3.put_object(Bucket=bucket, Key="r.fq", Body=b"@r\nACGT\n+\nIIII\n")
    s3_proxy.before_get = lambda: s3.put_object(Bucket=bucket, Key="r.fq", Body=b"@r\nTTTT\n+\nIIII\n")
    with pytest.raises(StorageError, match="changed while it was read"):
        fetch(f"s3://{bucket}/r.fq", tmp_path, S3Settings(endpoint_url=s3_proxy.url))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@pytest.mark.integration
def test_flow_from_s3_reads_to_s3_results(prefect_harness, ray_cluster, s3_server, sim_data, tmp_path):
    from flows.params import PipelineParams
    from flows.pipeline import align_reads
    from tasks.genomics.paf import Hit

    s3 = client(s3_server)
    s3.create_bucket(Bucket="runs")
    s3.upload_file(str(sim_data["reads"]), "runs", "in/reads.fq.gz")
    s3.upload_file(str(sim_data["reference"]), "runs", "in/ref.fa")
    params = PipelineParams(reads="s3://runs/in/reads.fq.gz", reference="s3://runs/in/ref.fa",
                            output="s3://runs/out/sample1", staging_dir=str(tmp_path / "fsx"), backend="local",
                            shard_size=250, sam=True, s3={"endpoint_url": s3_server})
    state = align_reads(params, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="runs", Prefix="out/sample1/")["Contents"]}
    assert {"out/sample1/reads.paf", "out/sample1/reads.sam", "out/sample1/reads.summary.json",
            "out/sample1/reads.bam", "out/sample1/reads.bam.bai"} <= keys
    assert "s3://runs/out/sample1/reads.paf" in summary["exported"]
    paf = s3.get_object(Bucket="runs", Key="out/sample1/reads.paf")["Body"].read().decode()
    hits = [Hit.from_paf_line(line) for line in paf.splitlines()]
    assert sum(h.primary for h in hits) == summary["mapped"] > 0.95 * summary["reads"]
    assert (tmp_path / "fsx" / "inputs" / "runs" / "in" / "reads.fq.gz").is_file()  # staged copy on "FSx"


@pytest.mark.integration
def test_flow_with_a_missing_s3_key_fails_at_once_naming_it(prefect_harness, s3_server, tmp_path):
    from flows.params import PipelineParams
    from flows.pipeline import align_reads

    client(s3_server).create_bucket(Bucket="empty")
    params = PipelineParams(reads="s3://empty/none.fq.gz", reference="s3://empty/none.fa",
                            staging_dir=str(tmp_path), backend="local", s3={"endpoint_url": s3_server})
    state = align_reads(params, return_state=True)
    assert state.is_failed()
    assert "s3://empty/none.fa: not found" in str(state.result(raise_on_failure=False))


def test_round_trip_through_ceph_radosgw_gives_the_same_bytes(tmp_path):
    """A second S3 implementation, the gateway of a production object store: a one-node Ceph
    with radosgw, started by deployments/ceph-rgw/rgw.sh as `make bench-data` starts it; two
    round trips on one cluster (the object deleted between them), then stopped."""
    import psutil

    from bench.s3 import s3_round_trip

    result = s3_round_trip(64, tmp_path, "rgw", repeats=2)
    assert result["same_bytes"] and result["mib"] == 64 and len(result["round_trips_mb_s"]) == 2
    assert min(result["up_mb_s"], result["down_mb_s"], result["ref_up_mb_s"], result["ref_down_mb_s"]) > 0
    assert result["server_cpu_up_s"] > 0  # the cluster's daemons were found and measured
    left = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"])
            if any("/hf-rgw-" in part for part in p.info["cmdline"] or [])]
    assert not left, f"daemons left running: {left}"


@pytest.mark.integration
def test_prefect_aws_blocks_by_name(prefect_harness, s3_server, tmp_path):
    """Credentials (and the endpoint) from an AwsCredentials block, or from an S3Bucket block
    that also pins the bucket; the settings name no endpoint, so the blocks' is what works."""
    from prefect_aws import AwsCredentials
    from prefect_aws.s3 import S3Bucket

    from tasks.storage.uri import BadLocation

    creds = AwsCredentials(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1",
                           aws_client_parameters={"endpoint_url": s3_server})
    creds.save("helixflow-test-creds", overwrite=True)
    S3Bucket(bucket_name="blocked", credentials=creds).save("helixflow-test-bucket", overwrite=True)
    client(s3_server).create_bucket(Bucket="blocked")
    src = tmp_path / "ref.fa"
    src.write_text(">c\nACGT\n")
    [uri] = publish([src], "s3://blocked/in", S3Settings(credentials_block="helixflow-test-creds"))
    by_bucket = S3Settings(bucket_block="helixflow-test-bucket")
    assert fetch(uri, tmp_path / "fsx", by_bucket).read_text() == ">c\nACGT\n"
    with pytest.raises(BadLocation, match="the S3Bucket block 'helixflow-test-bucket' is for bucket 'blocked'"):
        fetch("s3://elsewhere/in/ref.fa", tmp_path / "fsx", by_bucket)
