"""A run that needs Ray no more lets the local Ray it started stop while it goes on
(tasks.runtime.ray_cluster.release_ray); a Ray the caller started is left alone."""

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent(r"""
    import json, os, time
    import ray
    from tasks.runtime.ray_cluster import ray_connection, release_ray

    def alive(pid):
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        return state != "Z"

    def wait_gone(pid, seconds=60):
        deadline = time.monotonic() + seconds
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        return not alive(pid)

    @ray.remote
    def worker_pid():
        return os.getpid()

    out = {}
    with ray_connection(None, 1):
        worker = ray.get(worker_pid.remote())
        release_ray()
        release_ray()  # once is enough; again is nothing
        out["worker_gone_inside_the_block"] = wait_gone(worker)
    out["ray_up_after_the_block"] = ray.is_initialized()

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)  # the caller's own Ray
    with ray_connection(None, 1):
        worker = ray.get(worker_pid.remote())
        release_ray()
        time.sleep(3)
        out["callers_worker_alive"] = alive(worker)
        out["callers_ray_answers"] = ray.get(worker_pid.remote()) == worker
    ray.shutdown()
    print("RESULT", json.dumps(out))
""")


def test_release_stops_our_ray_inside_the_block_and_leaves_the_callers(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    [result] = [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert result == {"worker_gone_inside_the_block": True, "ray_up_after_the_block": False,
                      "callers_worker_alive": True, "callers_ray_answers": True}
