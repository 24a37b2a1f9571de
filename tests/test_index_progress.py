"""An index built on a Ray worker (a reference over the in-process size) shows where it
stands: a progress artifact that only moves forward and ends at 100%."""

import pytest

from tasks.genomics.simulation import fasta_text, simulate_reference

pytestmark = pytest.mark.integration


def test_an_index_built_on_ray_shows_its_progress(prefect_harness, ray_cluster, tmp_path, monkeypatch):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    import tasks.seed as seed
    from tasks.ingest import ingest_reference
    from tasks.storage.index_cache import load_index
    from tasks.storage.index_progress import build_progress

    path = tmp_path / "ref.fa"
    path.write_text(fasta_text(simulate_reference(2, 1_000_000, seed=5)))
    shown: list[float] = []
    real_update = seed.update_progress_artifact

    def record(artifact_id, progress, **kw):
        shown.append(progress)
        return real_update(artifact_id, progress, **kw)

    monkeypatch.setattr(seed, "IN_PROCESS_INDEX_BYTES", 0)  # on a Ray worker, as a large genome is
    monkeypatch.setattr(seed, "BUILD_LOG_EVERY_S", 0.01)
    monkeypatch.setattr(seed, "update_progress_artifact", record)
    staging = tmp_path / "fsx"

    @flow
    def index_only():
        reference = ingest_reference(str(path), str(staging))
        return reference, seed.build_reference_index(reference, None, None, str(staging))

    state = index_only(return_state=True)
    reference, files = state.result()
    assert files.seeding == (15, 5) and load_index(staging, reference.sha256, 15, 5) == (files, "verified")
    assert shown[-1] == 100.0 and shown == sorted(shown)
    assert build_progress(staging, reference.sha256) is None
    with get_client(sync_client=True) as client:
        [art] = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            key=ArtifactFilterKey(any_=["index-progress"])))
    assert art.type == "progress" and float(art.data) == 100.0
