"""Shared fixtures: one Prefect test harness, one real local Ray, small simulated data."""

from __future__ import annotations

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# No GPU here: numba.cuda runs on its simulator (set before numba is first imported).
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import gzip  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tasks.genomics.simulation import fasta_text, fastq_text, simulate_reads, simulate_reference  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def slurm():
    """The one-node Slurm of deployments/local-slurm (started if it is not up: idempotent)."""
    import subprocess

    from hpc.slurm import SlurmBackend

    script = Path(__file__).resolve().parents[1] / "deployments" / "local-slurm" / "slurm.sh"
    up = subprocess.run(["bash", str(script), "up"], capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stderr
    return SlurmBackend(backoff_seconds=0.2)


@pytest.fixture(scope="session")
def sim_data(tmp_path_factory) -> dict[str, Path]:
    """Three 30-kb contigs and 600 reads of 150 bp from both strands, reads gzipped."""
    root = tmp_path_factory.mktemp("sim")
    reference = simulate_reference(3, 30_000, seed=7)
    reads = simulate_reads(reference, 600, 150, 0.006, 0.0005, seed=8)
    (root / "reference.fa").write_text(fasta_text(reference))
    (root / "reads.fq.gz").write_bytes(gzip.compress(fastq_text(reads).encode()))
    return {"reference": root / "reference.fa", "reads": root / "reads.fq.gz", "root": root,
            "names": [r.name for r in reads]}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3 server on loopback, for boto3 over HTTP; yields its endpoint URL."""
    from bench.s3_servers import start_moto

    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(key, value)
    proc, url = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def bucket(s3_server, request):
    """A fresh bucket on the loopback server, named after the test."""
    import hashlib

    from bench.s3_proxy import client

    node = request.node
    name = f"b-{hashlib.sha1(node.nodeid.encode()).hexdigest()[:8]}-{node.name.replace('_', '-')[:40].lower()}"
    client(s3_server).create_bucket(Bucket=name.rstrip("-"))
    return name.rstrip("-")


@pytest.fixture
def s3_proxy(s3_server):
    from bench.s3_proxy import FaultProxy

    proxy = FaultProxy(s3_server)
    try:
        yield proxy
    finally:
        proxy.close()
