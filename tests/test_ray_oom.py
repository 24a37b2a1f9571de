"""A task Ray's memory monitor kills fails after a bounded number of tries, with Ray's
out-of-memory error, instead of being retried forever."""

import json
import re
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent(r"""
    import json
    import sys
    import time
    import ray
    from tasks.runtime.ray_cluster import LOCAL_RAY_CONFIG, OOM_RETRIES, ray_result

    # The memory monitor kills any task while the node uses more than 1% of its memory,
    # which it always does: every try of the task below is killed.
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
             _system_config={**LOCAL_RAY_CONFIG, "memory_usage_threshold": 0.01, "memory_monitor_refresh_ms": 50})

    @ray.remote
    def hold(log):
        with open(log, "a") as fh:  # one line per try
            fh.write("try\n")
        block = bytearray(200 << 20)
        time.sleep(30)
        return len(block)

    try:
        ray_result(hold.remote(sys.argv[1]))
    except ray.exceptions.OutOfMemoryError as exc:
        try:  # a try may be killed before it writes its line
            tries = len(open(sys.argv[1]).read().splitlines())
        except FileNotFoundError:
            tries = 0
        print("RESULT", json.dumps({"tries": tries, "allowed": OOM_RETRIES + 1, "error": str(exc)}))
    else:
        print("RESULT", json.dumps({"tries": 0, "allowed": OOM_RETRIES + 1, "error": "not killed"}))
""")


def test_an_oom_killed_task_fails_after_bounded_retries(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "tries.log")], capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    [result] = [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    # it ended (the subprocess returned instead of retrying forever), after at most 3 tries
    assert result["allowed"] == 3 and result["tries"] <= 3
    assert "killed due to the node running low on memory" in result["error"], result["error"]
    assert re.search(r"[\d.]+GB used / [\d.]+GB limit", result["error"]), result["error"]  # had, and could have
