"""The whole align-reads flow: Prefect test harness, real local Ray, real mpiexec ranks."""

import hashlib
import json
import re
from pathlib import Path

import pytest

from flows.params import PipelineParams
from prefect_runs import is_subflow_stand_in, run_ids
from flows.pipeline import align_reads
from hpc.manifest import load_manifest, verify_entry
from tasks.genomics.fastx import FastxFormatError
from tasks.genomics.paf import truth_from_name
from tasks.storage.uri import BadLocation

pytestmark = pytest.mark.integration

STEP_ARTIFACTS = {"ingest-reads", "ingest-reference", "encode-summary", "reference-index",
                  "candidate-windows", "stage-files", "kernel-ranks", "qc-reads",
                  "accuracy-by-mapq-reads", "outputs-reads", "align-submit", "stages-reads"}


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def failed_task_runs(flow_run_id) -> int:
    """Task runs of the flow run (and its align-sample subflows) that ended failed, counting
    every retry of each."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        ids = run_ids(client, flow_run_id)
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    return sum(r.run_count for r in runs if r.state is not None and r.state.is_failed() and not is_subflow_stand_in(r))


def artifact_keys(flow_run_id) -> set[str]:
    """Artifacts of the flow run and of its subflows (one align-sample run per sample)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        runs = run_ids(client, flow_run_id)
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=runs)))
    return {a.key for a in arts if a.key}


@pytest.fixture(scope="module")
def good_run(prefect_harness, ray_cluster, sim_data, tmp_path_factory):
    work = tmp_path_factory.mktemp("run")
    params = PipelineParams(reads=str(sim_data["reads"]), reference=sim_data["reference"].as_uri(),
                            output=str(work / "out"), staging_dir=str(work / "fsx"), ranks=2,
                            shard_size=250, backend="local")
    state = align_reads(params, return_state=True)
    assert state.is_completed(), state.message
    return params, state, work


def test_flow_aligns_reads_to_their_true_origin(good_run, sim_data):
    params, state, work = good_run
    summary = state.result()
    paf = Path(summary["paf"])
    lines = paf.read_text().splitlines()
    assert len(lines) == summary["mapped"] and summary["reads"] == len(sim_data["names"]) == 600
    correct = 0
    for line in lines:
        cols = line.split("\t")
        assert len(cols) == 16 and cols[12] == "tp:A:P" and cols[13].startswith("AS:i:")
        truth = truth_from_name(cols[0])
        overlap = min(int(cols[8]), truth.end) - max(int(cols[7]), truth.start)
        union = max(int(cols[8]), truth.end) - min(int(cols[7]), truth.start)
        correct += cols[5] == truth.contig and cols[4] == truth.strand and overlap >= 0.1 * union
    assert correct / len(sim_data["names"]) >= 0.95
    assert summary["accuracy"]["correct"] == correct
    assert json.loads(Path(summary["summary"]).read_text())["mapped"] == summary["mapped"]
    assert (paf.parent / "reads.accuracy_by_mapq.png").read_bytes()[:4] == b"\x89PNG"
    assert paf.name == "reads.paf" and Path(summary["bam"]).name == "reads.bam"


def run_on_slurm(params, state, folder: Path, **update) -> tuple:
    """The good run's parameters on Slurm (plus ``update``), staged under ``folder``; the run
    must complete with the same PAF as the local run. Returns (state, summary)."""
    slurm_state = align_reads(params.model_copy(update={"backend": "slurm", "staging_dir": str(folder),
                                                        "output": str(folder / "out"), **update}),
                              return_state=True)
    assert slurm_state.is_completed(), slurm_state.message
    summary = slurm_state.result()
    assert Path(summary["paf"]).read_text() == Path(state.result()["paf"]).read_text()
    return slurm_state, summary


def test_slurm_backend_gives_the_same_paf_as_local(good_run, slurm, tmp_path):
    params, state, _ = good_run
    slurm_state, summary = run_on_slurm(params, state, tmp_path / "fsx it's \"quoted\"")
    assert (Path(summary["staging"]) / "align" / "helixflow-align-{}.sbatch".format(Path(summary["staging"]).name)).is_file()
    assert "align-submit" in artifact_keys(slurm_state.state_details.flow_run_id)


def test_srun_launcher_gives_the_same_paf(good_run, slurm, tmp_path):
    params, state, _ = good_run
    _, summary = run_on_slurm(params, state, tmp_path / "fsx", launcher="srun")
    script = next((Path(summary["staging"]) / "align").glob("*.sbatch")).read_text()
    assert "srun --ntasks=2 --mpi=pmi2" in script


def test_slurm_job_array_mode_gives_the_same_paf(good_run, slurm, tmp_path):
    params, state, _ = good_run
    _, summary = run_on_slurm(params, state, tmp_path / "fsx", mode="array")
    align = Path(summary["staging"]) / "align"
    names = sorted(p.name for p in align.glob("rank_*.done.json"))
    assert [n.split("-")[0] for n in names] == ["rank_0000", "rank_0001"]
    assert len({n.split("-")[1] for n in names}) == 1  # both of this run's attempt


def test_a_rank_killed_by_a_signal_fails_the_run_naming_it(good_run, tmp_path, monkeypatch):
    """What the out-of-memory killer does to a rank: the error says which signal, with the tails."""
    params, _, _ = good_run
    monkeypatch.setenv("HELIXFLOW_KILL_RANK", "1")
    state = align_reads(params.model_copy(update={"staging_dir": str(tmp_path)}), return_state=True)
    assert state.is_failed()
    error = str(state.result(raise_on_failure=False))
    # mpiexec takes the other rank down with it, so rank 0 may have no marker either
    assert re.search(r"ranks without a completion marker: \[(0, )?1\]; a rank was killed by SIGKILL \(signal 9\)",
                     error), error
    assert "--- stdout tail ---" in error


def test_failing_slurm_job_fails_the_run_with_the_ranks_traceback(good_run, slurm, tmp_path, monkeypatch):
    params, _, _ = good_run
    monkeypatch.setenv("HELIXFLOW_FAIL_RANK", "1")  # sbatch exports the environment to the job
    state = align_reads(params.model_copy(update={"backend": "slurm", "staging_dir": str(tmp_path)}),
                        return_state=True)
    assert state.is_failed()
    error = str(state.result(raise_on_failure=False))
    assert "ended FAILED" in error and "rank 1: RuntimeError: rank 1: failure injected" in error
    # the rank's own traceback, from its marker: mpiexec may drop what an aborting rank printed
    told = error.split("--- rank 1 traceback ---\n", 1)[1].split("--- stderr tail ---", 1)[0].strip().splitlines()
    assert told[0] == "Traceback (most recent call last):" and 'align_job.py"' in told[-3]
    assert told[-1] == "RuntimeError: rank 1: failure injected by HELIXFLOW_FAIL_RANK"


def test_rejected_submission_fails_at_once_with_slurms_message(good_run, slurm, tmp_path):
    params, _, _ = good_run
    state = align_reads(params.model_copy(update={"backend": "slurm", "partition": "nope",
                                                  "staging_dir": str(tmp_path)}), return_state=True)
    assert state.is_failed()
    assert "invalid partition specified: nope" in str(state.result(raise_on_failure=False))


def test_array_mode_needs_slurm(good_run, tmp_path):
    params, _, _ = good_run
    state = align_reads(params.model_copy(update={"mode": "array", "staging_dir": str(tmp_path)}), return_state=True)
    assert state.is_failed() and "mode 'array' needs the slurm backend" in str(state.result(raise_on_failure=False))


def artifact_table(flow_run_id, key: str) -> list[dict]:
    """A table artifact of the flow run or of one of its subflows."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=run_ids(client, flow_run_id)), key=ArtifactFilterKey(any_=[key])))
    data = arts[0].data
    return json.loads(data) if isinstance(data, str) else data


def test_second_run_reuses_the_cached_reference_index(good_run, tmp_path):
    params, state, work = good_run
    first = artifact_table(state.state_details.flow_run_id, "reference-index")[0]
    assert first["source"] == "built" and (Path(first["cache"]) / "index.json").is_file()
    again = align_reads(params.model_copy(update={"output": str(tmp_path / "out")}), return_state=True)
    assert again.is_completed(), again.message
    second = artifact_table(again.state_details.flow_run_id, "reference-index")[0]
    assert second["source"] == "cache" and second["cache"] == first["cache"]
    assert Path(again.result()["paf"]).read_text() == Path(state.result()["paf"]).read_text()


def test_flow_stages_a_verifiable_manifest(good_run):
    _, state, work = good_run
    manifest_path = Path(state.result()["staging"]) / "manifest.json"
    manifest = load_manifest(manifest_path)
    assert len(manifest["shards"]) == 3  # 600 reads, 250 per shard
    for entry in manifest["shards"]:
        verify_entry(manifest_path.parent, entry)
        verify_entry(manifest_path.parent, entry["candidates"])
    assert not list(manifest_path.parent.rglob("*.tmp"))


def test_accuracy_artifact_sets_each_mapq_bin_s_wrong_reads_beside_what_its_mapq_says(good_run):
    _, state, _ = good_run
    rows = artifact_table(state.state_details.flow_run_id, "accuracy-by-mapq-reads")
    summary = state.result()
    assert sum(r["reads"] for r in rows) == summary["mapped"]
    for r in rows:
        assert r["wrong"] == r["reads"] - r["correct"]
        low = int(r["mapq"].split("-")[0])  # a bin's reads say at most 10^(-low/10) each
        assert 0 <= r["said_wrong"] <= r["reads"] * 10 ** (-low / 10) + 0.01
    top = next(r for r in rows if r["mapq"] == "60")
    assert top["said_wrong"] == round(top["reads"] * 1e-6, 2)


def test_every_step_emits_an_artifact(good_run):
    _, state, _ = good_run
    keys = artifact_keys(state.state_details.flow_run_id)
    assert STEP_ARTIFACTS <= keys, STEP_ARTIFACTS - keys


def fastq(records):
    return "".join(f"@{n}\n{s}\n+\n{q}\n" for n, s, q in records)


BAD_INPUTS = {
    "missing-reads": (None, None, "missing.fq: file not found"),
    "quality-length": ("reads", fastq([("r1", "ACGTACGTAC", "IIIIIIIIII"), ("r2", "ACGTAC", "IIIII")]),
                       "bad.fq:8: record 'r2': sequence has 6 bases but quality has 5"),
    "truncated": ("reads", fastq([("r1", "ACGTACGTAC", "IIIIIIIIII")]) + "@r2\nACGT\n",
                  "bad.fq:5: record 'r2' is truncated"),
    "invalid-char": ("reads", fastq([("r1", "ACGTACGTAC", "IIIIIIIIII"), ("r2", "ACG*AC", "IIIIII")]),
                     "bad.fq:6: invalid base '*' at column 4"),
    "empty-reads": ("reads", "", "bad.fq: file is empty"),
    "duplicate-read-names": ("reads", fastq([("r1", "ACGTACGTAC", "IIIIIIIIII"), ("r2", "ACGTAC", "IIIIII"),
                                             ("r1", "GGGTACGTAC", "IIIIIIIIII")]),
                             "bad.fq:9: read name 'r1' repeats the read at line 1; expected unique read names"),
    "long-read-name": ("reads", fastq([("r1", "ACGTACGTAC", "IIIIIIIIII"), ("r2" + "x" * 300, "ACGTAC", "IIIIII")]),
                       "bad.fq:5: read name is 302 bytes; expected at most 254"),
    "duplicate-contig": ("reference", ">c1\nACGTACGTAC\n>c2\nACGT\n>c1\nGGGG\n",
                         "bad.fa:5: duplicate contig name 'c1' (first seen at line 1)"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_the_run_with_a_clear_message(case, good_run, sim_data, tmp_path):
    params, _, work = good_run
    which, text, expected = BAD_INPUTS[case]
    overrides = {}
    if case == "missing-reads":
        overrides["reads"] = str(tmp_path / "missing.fq")
    else:
        name = "bad.fq" if which == "reads" else "bad.fa"
        (tmp_path / name).write_text(text)
        overrides[which] = str(tmp_path / name)
    before = snapshot(work)
    state = align_reads(params.model_copy(update=overrides), return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    # The error itself, as raised where the input was read (a Ray worker for FASTQ): its own
    # type and one line naming file, line and what was expected; tried once, not retried.
    assert isinstance(error, (FastxFormatError, BadLocation, FileNotFoundError)), type(error)
    message = str(error)
    assert message.startswith(str(tmp_path)) and expected in message and "\n" not in message, message
    assert failed_task_runs(state.state_details.flow_run_id) == 1
    assert snapshot(work) == before  # nothing staged or written earlier was touched


def test_cli_last_line_names_file_line_and_expectation(good_run, tmp_path):
    """A FASTQ with a short quality line, through the CLI: exit 1 and a last line that says
    what is wrong and where (it used to be Ray's 'Failed to deserialize exception')."""
    import subprocess
    import sys

    params, _, work = good_run
    bad = tmp_path / "bad reads.fq"
    bad.write_text(BAD_INPUTS["quality-length"][1])
    done = subprocess.run([sys.executable, "-m", "flows.pipeline", "--reads", str(bad), "--reference",
                           params.reference, "--staging-dir", str(tmp_path / "fsx"), "--output", str(tmp_path / "out"),
                           "--backend", "local", "--ray-workers", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (f"helixflow: align-reads failed: {bad}:8: record 'r2': sequence has 6 bases "
                    "but quality has 5 characters"), last
    assert not (tmp_path / "out").exists()


def test_bad_parameter_names_the_field():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="gap_open"):
        PipelineParams(reads="r.fq", reference="ref.fa", scoring={"gap_open": 3})
    with pytest.raises(ValidationError, match="backend"):
        PipelineParams(reads="r.fq", reference="ref.fa", backend="lsf")


@pytest.mark.parametrize("module", ["flows.pipeline", "flows.simulate", "flows.benchmark"])
def test_every_flow_prints_its_help(module):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
    if module == "flows.pipeline":  # every field is a flag, nested S3 settings included
        assert "--max-secondary" in done.stdout and "80% of the primary" in done.stdout
        assert "--bucket-block" in done.stdout and "--credentials-block" in done.stdout
