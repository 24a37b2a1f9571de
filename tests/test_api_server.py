"""The CLI starts Prefect's temporary API server as its first step (tasks.runtime.api_server):
only when nothing names a server, it answers, and it never outlives the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tasks.runtime.api_server import answers, server_defaults, wanted

ROOT = Path(__file__).resolve().parents[1]

# A process that starts the server as the CLI does, says where it is, and holds it (--hold).
CHILD = """
import os, sys, time
from tasks.runtime.api_server import start_early_server
server = start_early_server(sys.argv[1:])
if server is None:
    print("none", flush=True)
    sys.exit(0)
server.wait_ready()
print(server.process.pid, os.environ["PREFECT_API_URL"], flush=True)
if "--hold" in sys.argv:
    time.sleep(600)
"""


# Against a server that registered no block type as it started: save an S3 bucket block with its
# credentials, as a user does for --bucket-block, and load it back.
SAVE_AND_LOAD_BLOCK = """
from prefect.client.orchestration import get_client
from prefect_aws import AwsCredentials
from prefect_aws.s3 import S3Bucket
with get_client(sync_client=True) as client:
    print(len(client.read_block_types()))
S3Bucket(bucket_name="bk", credentials=AwsCredentials(aws_access_key_id="key-id", aws_secret_access_key="s")).save("b")
block = S3Bucket.load("b")
print(block.bucket_name, block.credentials.aws_access_key_id)
"""


@pytest.mark.parametrize("env, files, expected", [
    ({}, {}, True),
    ({}, {".env": "OTHER=1\n", "pyproject.toml": "[project]\nname = 'x'\n"}, True),
    ({"PREFECT_API_URL": "http://h:4200/api"}, {}, False),
    ({"PREFECT_SERVER_EPHEMERAL_ENABLED": "false"}, {}, False),
    ({}, {".env": "PREFECT_API_URL=http://h:4200/api\n"}, False),
    ({}, {"prefect.toml": "[api]\nurl = 'http://h:4200/api'\n"}, False),
    ({}, {"pyproject.toml": "[tool.prefect.api]\nurl = 'http://h:4200/api'\n"}, False),
    ({}, {"home/profiles.toml": "[profiles.default]\nPREFECT_API_URL = 'http://h:4200/api'\n"}, False),
    ({"PREFECT_PROFILES_PATH": "elsewhere.toml"},
     {"elsewhere.toml": "[profiles.x]\nPREFECT_SERVER_EPHEMERAL_ENABLED = false\n"}, False),
    ({}, {".env": "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED=true\n"}, False),
    ({}, {"prefect.toml": "[server.services.triggers]\nenabled = true\n"}, False),
    ({}, {".env": "PREFECT_SERVER_REGISTER_BLOCKS_ON_START=true\n"}, False),
    ({}, {"prefect.toml": "[server]\nregister_blocks_on_start = true\n"}, False),
    ({}, {"home/profiles.toml": "[profiles.default]\nPREFECT_API_BLOCKS_REGISTER_ON_START = true\n"}, False),
])
def test_starts_only_when_nothing_names_a_server(tmp_path, env, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    env = {"PREFECT_HOME": str(tmp_path / "home"), **env}
    if "PREFECT_PROFILES_PATH" in env:
        env["PREFECT_PROFILES_PATH"] = str(tmp_path / env["PREFECT_PROFILES_PATH"])
    assert wanted(env, tmp_path) is expected


@pytest.mark.parametrize("env, expected", [
    ({}, {"PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false", "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
          "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false"}),
    ({"PREFECT_API_BLOCKS_REGISTER_ON_START": "true", "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "true"},
     {"PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false"}),
    ({"PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "1", "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "1"},
     {"PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false"}),
])
def test_the_environment_rules_the_servers_defaults_under_any_name(env, expected):
    assert server_defaults(env) == expected


@pytest.fixture(scope="module")
def child_env(tmp_path_factory) -> dict[str, str]:
    """No server named anywhere: a Prefect home of its own, PREFECT_API_URL unset."""
    home = tmp_path_factory.mktemp("prefect-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, "PREFECT_HOME": str(home), "PYTHONPATH": str(ROOT), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def gone(pid: int) -> bool:
    """Exited (a zombie left to a parent that does not reap counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_server_answers_and_stops_when_the_process_exits(child_env, tmp_path):
    done = subprocess.run([sys.executable, "-c", CHILD], env=child_env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    pid, api_url = done.stdout.split()
    assert api_url.startswith("http://127.0.0.1:") and api_url.endswith("/api")
    assert gone(int(pid)) and not answers(api_url)


def test_server_dies_with_a_killed_process(child_env, tmp_path):
    child = subprocess.Popen([sys.executable, "-c", CHILD, "--hold"], env=child_env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        pid, api_url = child.stdout.readline().split()
        assert answers(api_url)  # from outside: the server is up and answering
        with urllib.request.urlopen(f"{api_url}/admin/settings", timeout=10) as response:
            services = json.load(response)["server"]["services"]
        assert not services["triggers"]["enabled"] and services["task_run_recorder"]["enabled"]  # automations off
        saved = subprocess.run([sys.executable, "-c", SAVE_AND_LOAD_BLOCK], env={**child_env, "PREFECT_API_URL": api_url},
                               cwd=tmp_path, capture_output=True, text=True, timeout=120)
        # No block type registered at its start, yet a block saved on it loads back (--bucket-block)
        assert saved.returncode == 0 and saved.stdout.split() == ["0", "bk", "key-id"], saved.stderr[-2000:]
    finally:
        child.kill()
        child.wait(timeout=30)
    deadline = time.monotonic() + 30
    while not gone(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gone(int(pid)) and not answers(api_url)


def test_a_server_too_slow_to_answer_is_a_clear_error_and_is_stopped(child_env, tmp_path):
    """Past the wait (the setting Prefect's own wait reads), the error names the limit and the
    setting that changes it, and the server is not left behind."""
    marker = f"helixflow-test-{os.getpid()}-{time.monotonic_ns()}"
    env = {**child_env, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1", "HELIXFLOW_TEST_MARKER": marker}
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    [error] = [line for line in done.stderr.splitlines() if line.startswith("RuntimeError: ")]
    assert error.startswith("RuntimeError: Prefect's temporary API server on port ") and error.endswith(
        "did not answer within 1 s; a longer wait is set with PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"), error
    assert not marked_servers(marker)


@pytest.mark.parametrize("args, extra", [(["--help"], {}), ([], {"PREFECT_API_URL": "http://127.0.0.1:9/api"})])
def test_no_server_for_help_or_a_named_server(child_env, tmp_path, args, extra):
    done = subprocess.run([sys.executable, "-c", CHILD, *args], env={**child_env, **extra}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "none\n"), done.stderr[-2000:]


def test_cli_run_on_its_own_server_exits_0_and_leaves_no_server(child_env, sim_data, tmp_path):
    """The whole CLI as a user runs it with no Prefect server anywhere: it exits 0 with the
    sample's line last, prints no links to a UI that does not exist, and no server is left."""
    marker = f"helixflow-test-{os.getpid()}-{time.monotonic_ns()}"
    done = subprocess.run(
        [sys.executable, "-m", "flows.pipeline", "--reads", str(sim_data["reads"]), "--reference",
         str(sim_data["reference"]), "--staging-dir", str(tmp_path / "fsx"), "--output", str(tmp_path / "out"),
         "--backend", "local", "--ranks", "2", "--ray-workers", "1", "--sample", "s1"],
        env={**child_env, "HELIXFLOW_TEST_MARKER": marker}, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("sample s1: reads: 600  mapped: "), last
    assert "View at" not in done.stdout + done.stderr
    assert (tmp_path / "out" / "s1.paf").stat().st_size > 0
    assert not marked_servers(marker)


def marked_servers(marker: str) -> list[int]:
    """uvicorn processes started with ``marker`` in their environment (the CLI's server)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if marker.encode() in (proc / "environ").read_bytes() and b"uvicorn" in (proc / "cmdline").read_bytes() \
                    and not gone(int(proc.name)):
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found

