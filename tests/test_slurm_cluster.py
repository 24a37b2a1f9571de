"""The Slurm backend against a real one-node Slurm (munged, slurmctld, slurmd on this machine)."""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hpc.backend import JobSpec, JobState, tail
from hpc.slurm import parse_scontrol_job
from hpc.submit import run_to_completion

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
SLURM = ROOT / "deployments" / "local-slurm" / "slurm.sh"


def job(tmp_path, command, **resources):
    return JobSpec("helixflow-test", command, tmp_path, tmp_path / "job.out", tmp_path / "job.err",
                   resources={"ntasks": 1, **resources})


def in_squeue(job_id: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%i"], capture_output=True, text=True).stdout
    return job_id in out.split()


def test_job_in_folder_with_spaces_and_quotes_completes(slurm, tmp_path):
    folder = tmp_path / "fsx it's \"quoted\""
    folder.mkdir()
    attempts = run_to_completion(slurm, job(folder, ["bash", "-c", "pwd; echo done"]), poll_seconds=0.3)
    assert attempts[-1].state is JobState.COMPLETED
    assert (folder / "job.out").read_text().splitlines() == [str(folder), "done"]
    assert "#SBATCH --output=" in attempts[-1].handle.script.read_text()


def test_job_that_can_never_start_is_cancelled_at_once_with_its_reason(slurm, tmp_path):
    """Six tasks on a two-CPU node: Slurm keeps it pending (Reason=PartitionConfig) forever;
    the wait ends at once, says why, and leaves nothing in the queue."""
    changes = []
    t0 = time.monotonic()
    attempts = run_to_completion(slurm, job(tmp_path, ["true"], ntasks=6), poll_seconds=0.3,
                                 on_change=lambda state, reason: changes.append((state, reason)))
    handle = attempts[-1].handle
    assert attempts[-1].state is JobState.UNSCHEDULABLE and len(attempts) == 1
    assert handle.reason.startswith("Reason=PartitionConfig"), handle.reason
    assert changes[-1] == (JobState.UNSCHEDULABLE, handle.reason)
    assert time.monotonic() - t0 < 60 and not in_squeue(handle.job_id)


def test_job_pending_past_its_limit_is_cancelled(slurm, tmp_path):
    """A job held in the queue (as one waiting for busy nodes would be) past pending_timeout."""
    attempts = run_to_completion(slurm, job(tmp_path, ["true"], extra_directives=["--hold"]), poll_seconds=0.3,
                                 pending_timeout=3)
    handle = attempts[-1].handle
    assert attempts[-1].state is JobState.UNSCHEDULABLE
    assert handle.reason.startswith("still pending after 3 s (Reason=") and not in_squeue(handle.job_id)


def test_secrets_in_the_submitting_environment_do_not_reach_the_job(slurm, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-the-job")
    monkeypatch.setenv("HELIXFLOW_RANK_SLEEP", "0")
    attempts = run_to_completion(slurm, job(tmp_path, ["env"]), poll_seconds=0.3)
    assert attempts[-1].state is JobState.COMPLETED
    names = {line.split("=", 1)[0] for line in (tmp_path / "job.out").read_text().splitlines() if "=" in line}
    assert "AWS_SECRET_ACCESS_KEY" not in names
    assert {"PATH", "HELIXFLOW_RANK_SLEEP"} <= names


def test_nonzero_exit_ends_failed_with_its_stderr(slurm, tmp_path):
    attempts = run_to_completion(slurm, job(tmp_path, ["bash", "-c", "echo 'kernel exploded' >&2; exit 3"]),
                                 poll_seconds=0.3)
    assert attempts[-1].state is JobState.FAILED and len(attempts) == 1
    assert "kernel exploded" in tail(tmp_path / "job.err")


def test_job_over_its_time_limit_ends_timeout(slurm, tmp_path):
    attempts = run_to_completion(slurm, job(tmp_path, ["sleep", "300"], time="1"), poll_seconds=1, timeout=240)
    assert attempts[-1].state is JobState.TIMEOUT
    assert [s for _, s in attempts[-1].timeline][-1] is JobState.TIMEOUT


# The waiter takes Ctrl-C as a terminal's process does, whatever this test inherited: a
# background job of a shell without job control (`setsid make test &`, some CI runners) starts
# with SIGINT ignored, Python then leaves it ignored, and the waiter went on polling until its
# job ended (the 240-s timeout below, seen here; the "loaded slurmctld" it was blamed on before).
WAITER = """
import signal
import sys
from pathlib import Path
from hpc.backend import JobSpec, wait_for
from hpc.slurm import SlurmBackend
signal.signal(signal.SIGINT, signal.default_int_handler)
folder = Path(sys.argv[1])
backend = SlurmBackend()
handle = backend.submit(JobSpec("helixflow-cancel", ["sleep", "300"], folder, folder / "o", folder / "e"))
print(handle.job_id, flush=True)
wait_for(backend, handle, poll_seconds=0.3)
"""


def test_interrupting_the_waiter_scancels_the_job(slurm, tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WAITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    job_id = proc.stdout.readline().strip()
    deadline = time.monotonic() + 60
    while not in_squeue(job_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert in_squeue(job_id)
    proc.send_signal(signal.SIGINT)  # Ctrl-C; Prefect's cancellation raises in the same place
    # Generous: with two CPU hogs beside it, scontrol and scancel (through munge and a busy
    # slurmctld) took most of a minute once; the claim is that the job goes, not how fast.
    proc.wait(timeout=240)
    deadline = time.monotonic() + 120
    while in_squeue(job_id) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not in_squeue(job_id)


def node_state() -> str:
    out = subprocess.run(["scontrol", "show", "node", "-o"], capture_output=True, text=True).stdout
    return parse_scontrol_job(out).get("State", "")


def test_job_lost_with_slurmd_is_detected_and_resubmitted(slurm, tmp_path):
    marker = tmp_path / "ran"
    spec = job(tmp_path, ["bash", "-c", f"echo x >> '{marker}'; sleep 20"])
    result = {}
    waiter = threading.Thread(target=lambda: result.update(
        attempts=run_to_completion(slurm, spec, max_resubmits=1, poll_seconds=0.5, timeout=300)))
    waiter.start()
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.exists()
    # The node goes away: slurmd and the job's step daemon die.
    subprocess.run(["pkill", "-KILL", "-x", "slurmd"])
    subprocess.run(["pkill", "-KILL", "-x", "slurmstepd"])
    deadline = time.monotonic() + 120
    while "DOWN" not in node_state() and time.monotonic() < deadline:
        time.sleep(1)
    assert "DOWN" in node_state(), node_state()
    up = subprocess.run(["bash", str(SLURM), "up"], capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr
    waiter.join(timeout=300)
    attempts = result["attempts"]
    assert [a.state for a in attempts] == [JobState.NODE_FAIL, JobState.COMPLETED]
    assert marker.read_text() == "x\nx\n"


def helixflow_jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if "helixflow-align" in line]


def test_terminating_a_flow_run_scancels_its_job(slurm, sim_data, tmp_path):
    """What Prefect does to a cancelled flow run's process (SIGTERM) must not leave the job."""
    import os

    env = {**os.environ, "HELIXFLOW_RANK_SLEEP": "300"}
    flow = subprocess.Popen(
        [sys.executable, "-m", "flows.pipeline", "--reads", str(sim_data["reads"]), "--reference",
         str(sim_data["reference"]), "--backend", "slurm", "--staging-dir", str(tmp_path / "fsx"),
         "--output", str(tmp_path / "out")], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not helixflow_jobs() and time.monotonic() < deadline and flow.poll() is None:
        time.sleep(0.5)
    jobs = helixflow_jobs()
    assert jobs, "the flow never submitted its job"
    flow.terminate()
    flow.wait(timeout=120)
    deadline = time.monotonic() + 30
    while any(in_squeue(j) for j in jobs) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not any(in_squeue(j) for j in jobs)
