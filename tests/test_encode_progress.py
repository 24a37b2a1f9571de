"""The encode stage's progress artifact moves while the stream is cut (from the share of
the input read, for plain and gzip files alike) and ends at 100%."""

import gzip

import pytest

from hpc.manifest import load_npz_verified
from tasks.genomics.encoding import EncodedShard, to_bytes
from tasks.genomics.simulation import fastq_text, simulate_reads, simulate_reference

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("gz", [False, True])
def test_encode_progress_moves_before_the_end(prefect_harness, ray_cluster, tmp_path, monkeypatch, gz):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    import tasks.encode as encode
    import tasks.runtime.ray_cluster as ray_runtime
    from tasks.ingest import ingest_reads

    reads = simulate_reads(simulate_reference(1, 20_000, seed=3), 3000, 150, 0.006, 0.0, seed=4)
    text = fastq_text(reads).encode()
    path = tmp_path / ("reads.fq.gz" if gz else "reads.fq")
    path.write_bytes(gzip.compress(text, compresslevel=1) if gz else text)
    shown: list[float] = []
    real_update = ray_runtime.update_progress_artifact

    def record(artifact_id, progress, **kw):
        shown.append(progress)
        return real_update(artifact_id, progress, **kw)

    monkeypatch.setattr(ray_runtime, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(ray_runtime, "update_progress_artifact", record)
    monkeypatch.setattr("tasks.genomics.chunks.BLOCK", 64 << 10)  # several blocks: progress comes per block read
    monkeypatch.setattr("isal.igzip.READ_BUFFER_SIZE", 8 << 10)  # and the compressed file is read in steps

    @flow
    def encode_only():
        ingested = ingest_reads(str(path), str(tmp_path / "fsx"))
        return encode.encode_reads(ingested, str(tmp_path / "fsx" / "run"), 100)

    state = encode_only(return_state=True)
    shards = state.result()
    assert len(shards) == 30 and sum(s["reads"] for s in shards) == 3000
    # gzip chunks are views of one buffer that later blocks overwrite: every shard must still
    # hold its own reads (Ray copied each chunk when its task was submitted)
    root = tmp_path / "fsx" / "run"
    staged = [EncodedShard.from_arrays(load_npz_verified(root, s)) for s in shards]
    assert [n for sh in staged for n in sh.names] == [r.name for r in reads]
    assert b"".join(to_bytes(sh.codes()) for sh in staged) == b"".join(r.seq for r in reads)
    assert shown[-1] == 100.0 and shown == sorted(shown)
    early = [p for p in shown[:-1] if 0 < p < 100]
    assert len(set(early)) >= 5, shown  # it moved while shards were still being cut
    with get_client(sync_client=True) as client:
        [art] = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            key=ArtifactFilterKey(any_=["encode-progress"])))
    assert art.type == "progress" and float(art.data) == 100.0
