"""Slurm rendering and parsing on captured text; the backend's retry rules with a fake runner."""

import time
from pathlib import Path

import pytest

from hpc.backend import JobHandle, JobSpec, JobState, SubmissionError, SubmissionRejected
from hpc.slurm import (
    JOB_ENVIRONMENT,
    SLURM_STATES,
    VALID_OPTIONS,
    SlurmBackend,
    parse_sacct_state,
    parse_sbatch_parsable,
    parse_scontrol_job,
    pending_state,
    render_sbatch,
    slurm_state,
)

GOLDEN = Path(__file__).parent / "golden"
STAGING = "/fsx/helixflow/run it's \"here\""


def test_render_sbatch_matches_golden_file():
    script = render_sbatch(
        job_name="helixflow-align", partition="compute", nodes=1, ntasks=2, cpus_per_task=1, mem="4G",
        time="01:00:00", output=f"{STAGING}/job.out", error=f"{STAGING}/job.err", account="genomics",
        extra_directives=["--exclusive"], env={"NUMBA_NUM_THREADS": "1", "NOTE": "a b 'c'"},
        command=["mpiexec", "-n", "2", "python", "-m", "hpc.align_job", "--manifest", f"{STAGING}/manifest.json"],
    )
    assert script == (GOLDEN / "align.sbatch").read_text()


def test_render_sbatch_quotes_so_bash_reads_back_the_same_words(tmp_path):
    import subprocess

    words = ["printf", "%s\\n", "a b", "it's", '"q"', "$HOME", "`x`"]
    script = tmp_path / "s.sh"
    script.write_text(render_sbatch(command=words, env={"V": "$(echo no)"}) + 'printf "%s\\n" "$V"\n')
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True).stdout.splitlines()
    assert out == words[2:] + ["$(echo no)"]


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(TypeError) as err:
        render_sbatch(command=["true"], ntask=2)
    assert "['ntask']" in str(err.value) and ", ".join(VALID_OPTIONS) in str(err.value)


def test_state_table_covers_every_slurm_state():
    for name in ("PENDING", "RUNNING", "COMPLETING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT",
                 "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "REQUEUED", "BOOT_FAIL", "DEADLINE"):
        assert name in SLURM_STATES
    assert slurm_state("CANCELLED by 0") is JobState.CANCELLED
    assert slurm_state("NODE_FAIL") is JobState.NODE_FAIL and slurm_state("DEADLINE") is JobState.TIMEOUT
    assert slurm_state("WHATEVER") is JobState.UNKNOWN


def test_parsers_on_captured_output():
    scontrol = ("JobId=42 JobName=helixflow-align UserId=root(0) JobState=TIMEOUT Reason=TimeLimit "
                "ExitCode=0:15 RunTime=00:01:02 TimeLimit=00:01:00 StdErr=/fsx/job.err")
    fields = parse_scontrol_job(scontrol)
    assert fields["JobState"] == "TIMEOUT" and fields["Reason"] == "TimeLimit" and fields["ExitCode"] == "0:15"
    assert parse_sacct_state("CANCELLED by 0\n") == "CANCELLED"
    assert parse_sacct_state("\n") is None
    assert parse_sbatch_parsable("1234\n") == "1234" and parse_sbatch_parsable("77;cluster\n") == "77"
    with pytest.raises(SubmissionError):
        parse_sbatch_parsable("sbatch: error: oops")


class FakeRunner:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, args, timeout=60.0, env=None):
        self.calls.append(args)
        return self.answers.pop(0)


def spec(tmp_path):
    return JobSpec("j", ["true"], tmp_path, tmp_path / "o", tmp_path / "e")


def test_submit_retries_transient_errors_then_succeeds(tmp_path):
    runner = FakeRunner([(1, "", "sbatch: error: Socket timed out on send/recv operation"),
                         (1, "", "sbatch: error: Resource temporarily unavailable"), (0, "99\n", "")])
    handle = SlurmBackend(runner=runner, backoff_seconds=0.01).submit(spec(tmp_path))
    assert handle.job_id == "99" and len(runner.calls) == 3 and handle.script.is_file()


def test_submit_rejection_fails_at_once_with_slurms_message(tmp_path):
    runner = FakeRunner([(1, "", "sbatch: error: invalid partition specified: nope")])
    with pytest.raises(SubmissionRejected, match="invalid partition specified: nope"):
        SlurmBackend(runner=runner, backoff_seconds=0.01).submit(spec(tmp_path))
    assert len(runner.calls) == 1


def test_status_falls_back_to_sacct(tmp_path):
    runner = FakeRunner([(1, "", "slurm_load_jobs error: Invalid job id specified"), (0, "OUT_OF_MEMORY\n", "")])
    backend = SlurmBackend(runner=runner)
    assert backend.status(type("H", (), {"job_id": "5"})()) is JobState.OUT_OF_MEMORY


def test_job_array_state_is_combined_over_tasks():
    from hpc.slurm import combined_state

    assert combined_state(["COMPLETED", "RUNNING"]) is JobState.RUNNING
    assert combined_state(["COMPLETED", "PENDING"]) is JobState.PENDING
    assert combined_state(["COMPLETED", "COMPLETED"]) is JobState.COMPLETED
    assert combined_state(["COMPLETED", "FAILED", "TIMEOUT"]) is JobState.FAILED
    runner = FakeRunner([(0, "JobId=8 ArrayJobId=7 ArrayTaskId=1 JobState=COMPLETED\n"
                             "JobId=7 ArrayJobId=7 ArrayTaskId=0 JobState=NODE_FAIL\n", "")])
    assert SlurmBackend(runner=runner).status(type("H", (), {"job_id": "7"})()) is JobState.NODE_FAIL


@pytest.mark.parametrize(("line", "state", "reason"), [
    ("JobId=7 JobState=PENDING Reason=PartitionConfig Dependency=(null)", JobState.UNSCHEDULABLE,
     "Reason=PartitionConfig: Slurm will never start it as asked"),
    ("JobId=7 JobState=PENDING Reason=ReqNodeNotAvail,_UnavailableNodes:vm", JobState.PENDING,
     "Reason=ReqNodeNotAvail,_UnavailableNodes:vm"),
    ("JobId=7 JobState=PENDING Reason=Resources", JobState.PENDING, "Reason=Resources"),
    ("JobId=7 JobState=PENDING Reason=None", JobState.PENDING, ""),
    ("JobId=7 JobState=RUNNING Reason=None", JobState.RUNNING, ""),
])
def test_pending_reasons_that_never_clear_end_the_wait(line, state, reason):
    assert pending_state(parse_scontrol_job(line)) == (state, reason)


def test_a_control_character_in_a_value_is_refused_before_it_reaches_sbatch():
    with pytest.raises(ValueError, match=r"sbatch option 'partition': .* contains a control character"):
        render_sbatch(partition="cpu\n#SBATCH --wrap=rm", command=["true"])
    with pytest.raises(ValueError, match="contains a control character"):
        render_sbatch(extra_directives=["--comment=a\rb"], command=["true"])


def test_the_job_gets_only_the_listed_environment():
    spec = JobSpec("j", ["true"], Path(STAGING), Path(STAGING) / "o", Path(STAGING) / "e", {"NUMBA_NUM_THREADS": "1"})
    script = SlurmBackend().script_for(spec)
    assert f"#SBATCH --export={','.join(JOB_ENVIRONMENT)}" in script.splitlines()
    assert "export NUMBA_NUM_THREADS=1" in script.splitlines()


def test_a_job_whose_nodes_stay_gone_is_unschedulable_after_the_grace():
    line = "JobId=7 JobState=PENDING Reason=ReqNodeNotAvail,_UnavailableNodes:vm"
    backend = SlurmBackend(runner=lambda args, **kw: (0, line, ""), node_grace=0.2)
    handle = JobHandle(job_id="7", spec=None)
    assert backend.status(handle) is JobState.PENDING
    time.sleep(0.3)
    assert backend.status(handle) is JobState.UNSCHEDULABLE
    assert handle.reason.endswith("for over 0.2 s: its nodes are gone")
