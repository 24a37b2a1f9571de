"""Kill the flow mid-stage (SIGKILL to its whole process group, as a lost node would), rerun
it, and see the completed shards reused and the final PAF identical to a clean run's."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.params import PipelineParams
from flows.pipeline import align_reads
from prefect_runs import run_ids

pytestmark = pytest.mark.integration


def encode_summary(flow_run_id) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [art] = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=run_ids(client, flow_run_id)),
            key=ArtifactFilterKey(any_=["encode-summary"])))
    data = json.loads(art.data) if isinstance(art.data, str) else art.data
    return data[0]


def test_killed_run_resumes_from_completed_shards(prefect_harness, ray_cluster, sim_data, tmp_path):
    common = dict(reads=str(sim_data["reads"]), reference=str(sim_data["reference"]), backend="local",
                  shard_size=50, ranks=2)
    clean = align_reads(PipelineParams(**common, staging_dir=str(tmp_path / "clean"), output=str(tmp_path / "out0")))

    staging = tmp_path / "fsx"
    from prefect.settings import PREFECT_API_URL

    # The killed run reports to the test's Prefect server, as a worker's flow process would.
    env = {**os.environ, "HELIXFLOW_SHARD_SLEEP": "0.7", "PREFECT_API_URL": PREFECT_API_URL.value()}
    args = [sys.executable, "-m", "flows.pipeline", "--reads", common["reads"], "--reference", common["reference"],
            "--backend", "local", "--shard-size", "50", "--ranks", "2", "--staging-dir", str(staging),
            "--output", str(tmp_path / "out1")]
    proc = subprocess.Popen(args, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "killed.log", "wb"))
    deadline = time.time() + 240
    done: list[Path] = []
    while time.time() < deadline and len(done) < 3:
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        done = sorted(staging.glob("run-*/reads/*.done.json"))
        time.sleep(0.2)
    assert len(done) >= 3, "the first run never got three shards done"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    run = done[0].parent.parent
    # Ray's workers are not all in the driver's process group: one may land the shard it
    # had in hand before it notices its raylet is gone. Wait until the folder is still.
    finished, still_since = [], time.time()
    while time.time() - still_since < 3:
        now = sorted(staging.glob("run-*/reads/*.done.json"))
        if now != finished:
            finished, still_since = now, time.time()
        time.sleep(0.2)
    assert len(finished) < 12 and not (run / "manifest.json").exists()  # 600 reads / 50: killed mid-stage
    before = {p.name: p.with_name(p.name.removesuffix(".done.json")).stat().st_mtime_ns for p in finished}

    again = align_reads(PipelineParams(**common, staging_dir=str(staging), output=str(tmp_path / "out2")),
                        return_state=True)
    assert again.is_completed(), again.message
    summary = encode_summary(again.state_details.flow_run_id)
    assert summary["reused"] == len(finished) and summary["shards"] == 12
    for name, mtime in before.items():  # reused, not rewritten
        assert (run / "reads" / name.removesuffix(".done.json")).stat().st_mtime_ns == mtime
    assert not list(run.rglob(".*.tmp"))
    assert Path(again.result()["paf"]).read_text() == Path(clean["paf"]).read_text()


def test_damaged_shard_is_rewritten_not_reused(prefect_harness, ray_cluster, sim_data, tmp_path):
    params = PipelineParams(reads=str(sim_data["reads"]), reference=str(sim_data["reference"]), backend="local",
                            shard_size=200, staging_dir=str(tmp_path / "fsx"), output=str(tmp_path / "out"))
    first = align_reads(params)
    run = Path(first["staging"])
    shard = run / "reads" / "shard_00001.npz"
    shard.write_bytes(shard.read_bytes()[:1000])  # a half-written file under the final name
    (run / "reads" / ".shard_00002.npz.abc.tmp").write_bytes(b"partial")  # a temp file a kill left
    state = align_reads(params, return_state=True)
    assert state.is_completed(), state.message
    summary = encode_summary(state.state_details.flow_run_id)
    assert summary["reused"] == 2 and summary["temp_files_removed"] == 1
    assert Path(state.result()["paf"]).read_text() == Path(first["paf"]).read_text()


@pytest.fixture
def tiny_fs(tmp_path):
    """A 256-KiB tmpfs: a staging file system that fills up (needs root, as make test runs)."""
    mount = tmp_path / "small-fsx"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_staging_that_fills_up_fails_clearly_and_leaves_no_temp_files(prefect_harness, ray_cluster, sim_data, tiny_fs,
                                                                      tmp_path):
    params = PipelineParams(reads=str(sim_data["reads"]), reference=str(sim_data["reference"]), backend="local",
                            shard_size=100, staging_dir=str(tiny_fs), output=str(tmp_path / "out"))
    state = align_reads(params, return_state=True)
    assert state.is_failed()
    error = str(state.result(raise_on_failure=False))
    assert "no space left on the device" in error and str(tiny_fs) in error
    assert not list(tiny_fs.rglob("*.tmp")) and not list(tiny_fs.rglob("manifest.json"))
