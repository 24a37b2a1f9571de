"""One owner per run folder, and no job of a dead flow left running: real processes, real locks."""

import json
import signal
import subprocess
import sys
import time

import pytest

from hpc.backend import JobSpec, LocalBackend
from hpc.launchers import MpiexecLauncher
from hpc.submit import cancel_recorded, job_record
from tasks.runtime.owner import RunFolderBusy, RunFolderOwner

HOLDER = """
import sys, time
from tasks.runtime.owner import RunFolderOwner
owner = RunFolderOwner()
owner.claim(sys.argv[1])
print("held", flush=True)
time.sleep(300)
"""


def test_a_second_run_is_refused_while_the_first_lives_and_takes_over_when_it_dies(tmp_path):
    root = tmp_path / "run-abc"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderBusy, match=rf"in use by another run .* \(pid {holder.pid} on "):
            RunFolderOwner().claim(root)
        holder.send_signal(signal.SIGKILL)  # a flow killed outright: the kernel drops its lock
        holder.wait(timeout=30)
        with RunFolderOwner() as owner:
            assert owner.claim(root) == str(root)
            with pytest.raises(RunFolderBusy):  # held by this one now, even against this process
                RunFolderOwner().claim(root)
        RunFolderOwner().claim(root)  # released at the end of the block
    finally:
        holder.kill()


def test_the_job_a_dead_flow_left_running_is_stopped(tmp_path):
    """mpiexec ranks keep running after their flow is SIGKILLed; the next attempt stops them
    from the record the dead flow wrote, and leaves a process that merely reuses the pid alone."""
    command = MpiexecLauncher(2).wrap([sys.executable, "-c", "import time; time.sleep(300)", "hpc.align_job"])
    spec = JobSpec("left-behind", command, tmp_path, tmp_path / "job.out", tmp_path / "job.err")
    handle = LocalBackend().submit(spec)
    record = json.loads(json.dumps(job_record(handle, "local", "a1")))  # as read back from align/job.json
    time.sleep(1.0)
    assert handle.process.poll() is None
    assert cancel_recorded(record).startswith(("stopped process group", "killed process group"))
    assert handle.process.wait(timeout=30) is not None
    assert cancel_recorded(record) == "already gone"
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert "runs something else" in cancel_recorded({**record, "pgid": other.pid})
        assert other.poll() is None
    finally:
        other.kill()
