"""The local Ray a run starts comes up without the daemons a one-run cluster has no use for
(autoscaler monitor, log monitor, the dashboard's API server) and still runs tasks; it stops
with the run's block, every process of it, and SIGTERM reaches the handler that was there
before (Ray's shutdown resets it to the default action). Where a full start left an autoscaler
monitor, it is killed before the shutdown (it would hold it for a second)."""

import json
import subprocess
import sys
import textwrap

import pytest

from tasks.runtime.ray_cluster import STORE_MIN, lean_local_start, local_store_bytes

GIB = 2**30


def test_a_local_object_store_grows_with_the_cpus_within_the_node():
    assert local_store_bytes(2, 24 * GIB) == STORE_MIN == 256 * 2**20
    assert local_store_bytes(64, 256 * GIB) == 8 * GIB
    assert local_store_bytes(64, 10 * GIB) == int(0.3 * 10 * GIB)  # never past Ray's own default
    assert local_store_bytes(1, 100 * 2**20) == 75 * 2**20  # Ray's smallest store


def test_the_lean_start_sets_ray_params_only_inside_its_block():
    from ray._private.node import Node
    from ray._private.parameter import RayParams

    api_server = Node.start_api_server
    with lean_local_start() as lean:
        params = RayParams(num_cpus=1)
        assert lean and params.no_monitor is True and params.include_log_monitor is False
        assert Node.start_api_server is not api_server
    params = RayParams(num_cpus=1)
    assert not params.no_monitor and params.include_log_monitor in (None, True)
    assert Node.start_api_server is api_server


SCRIPT = textwrap.dedent(r"""
    import json, os, signal, time
    from pathlib import Path
    from tasks.runtime.ray_cluster import ray_connection, stop_autoscaler_monitor

    def children():
        me, found = os.getpid(), {}
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == me and fields[0] != "Z":
                    found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError):
                continue
        return found

    def monitors():
        return [pid for pid, cmd in children().items() if "autoscaler/_private/monitor.py" in cmd]

    def daemons():
        names = {"autoscaler/_private/monitor.py": "monitor", "log_monitor.py": "log monitor",
                 "dashboard/dashboard.py": "dashboard", "raylet/raylet": "raylet", "gcs_server": "gcs"}
        return sorted(name for cmd in children().values() for key, name in names.items() if key in cmd)

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    out = {"found_without_ray": stop_autoscaler_monitor()}
    with ray_connection(None, 1):
        import ray
        out["store_bytes"] = ray.cluster_resources()["object_store_memory"]
        ray_children = children()
        out["daemons"] = daemons()
        out["squares"] = ray.get([ray.remote(num_cpus=1)(lambda x: x * x).remote(x) for x in range(4)])
        out["monitors_while_up"] = len(monitors())
        out["found"] = stop_autoscaler_monitor()
        time.sleep(0.5)
        out["monitors_after_stop"] = len(monitors())
    deadline = time.monotonic() + 30
    while set(children()) & set(ray_children) and time.monotonic() < deadline:
        time.sleep(0.1)
    out["left_after_the_block"] = sorted(set(children()) & set(ray_children))
    out["sigterm_handled"] = False
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # the default action would end this process here
        time.sleep(2)
    except KeyboardInterrupt:
        out["sigterm_handled"] = True
    print("RESULT", json.dumps(out))
""")


@pytest.mark.integration
def test_our_local_ray_starts_lean_runs_tasks_and_stops_with_its_block(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    [result] = [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.pop("store_bytes") == local_store_bytes(1)  # 256 MiB here, not 30% of the node's memory
    assert result.pop("daemons") == ["gcs", "raylet"]
    assert result.pop("squares") == [0, 1, 4, 9]
    assert result == {"found_without_ray": False, "monitors_while_up": 0, "found": False, "monitors_after_stop": 0,
                      "left_after_the_block": [], "sigterm_handled": True}
