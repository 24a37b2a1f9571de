"""Operated from Prefect for real: `prefect server start`, the work pool, `prefect deploy
--all`, a process worker, `prefect deployment run ... --watch`, and the UI in Chromium."""

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tasks.runtime.api_server import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
SERVE = ROOT / "deployments" / "prefect" / "serve.sh"
SUMMARY_KEYS = {"ingest-reads", "encode-summary", "stage-files", "kernel-ranks", "qc-reads",
                "accuracy-by-mapq-reads", "outputs-reads"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("prefect-state")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(HELIXFLOW_PREFECT_PORT=str(port), HELIXFLOW_PREFECT_STATE=str(state),
               HELIXFLOW_PYTHON=sys.executable)
    up = subprocess.run(["bash", str(SERVE), "up"], env=env, capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr + up.stdout
    env.update(PREFECT_API_URL=f"http://127.0.0.1:{port}/api", PREFECT_HOME=str(state / "home"))
    try:
        yield {"env": env, "api": env["PREFECT_API_URL"], "ui": f"http://127.0.0.1:{port}", "state": state}
    finally:
        subprocess.run(["bash", str(SERVE), "down"], env=env, capture_output=True, timeout=120)


def api(stack, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(stack["api"] + path, data=data, method="POST" if body is not None else "GET",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def prefect(stack, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "prefect", *args], env=stack["env"], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def completed_run(stack, sim_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("served-run")
    params = {"reads": str(sim_data["reads"]), "reference": str(sim_data["reference"]),
              "output": str(out / "results"), "staging_dir": str(out / "fsx"), "ranks": 2}
    run = prefect(stack, "deployment", "run", "align-reads/on-demand", "--param", f"params={json.dumps(params)}",
                  "--watch")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", run.stdout).group(1)
    return flow_run_id, out


def test_deployment_run_completes_with_artifacts(stack, completed_run):
    flow_run_id, out = completed_run
    flow_run = api(stack, f"/flow_runs/{flow_run_id}")
    assert flow_run["state_type"] == "COMPLETED"
    assert flow_run["name"].startswith("align reads.fq.gz -> reference.fa")
    samples = api(stack, "/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [flow_run_id]}}})
    assert [r["name"] for r in samples] == ["sample reads"]  # the align-sample subflow
    runs = [flow_run_id] + [r["id"] for r in samples]
    arts = api(stack, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": runs}}})
    assert SUMMARY_KEYS <= {a["key"] for a in arts}
    assert (out / "results" / "reads.paf").stat().st_size > 0


def test_schedule_from_prefect_yaml_is_on_the_deployment(stack):
    deployment = api(stack, "/deployments/name/align-reads/nightly")
    schedules = deployment["schedules"]
    assert len(schedules) == 1
    assert schedules[0]["schedule"]["cron"] == "0 2 * * *" and schedules[0]["active"] is False
    names = {d["name"] for d in api(stack, "/deployments/filter", {})}
    assert {"on-demand", "nightly", "simulate", "kernel-benchmark"} <= names


def test_flow_run_environment_comes_from_the_job_variables_in_prefect_yaml(stack):
    """The process work pool keeps Prefect's stock job template; each deployment carries the
    flow runs' environment from prefect.yaml, which the worker merges into it."""
    pool = api(stack, "/work_pools/helixflow-local")
    assert pool["base_job_template"]["variables"]["properties"]["env"].get("default") in (None, {})
    for name in ("align-reads/on-demand", "align-reads/nightly", "simulate-reads/simulate"):
        env = api(stack, f"/deployments/name/{name}")["job_variables"]["env"]
        assert env == {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                       "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}, name


def test_bad_parameter_fails_at_once_naming_the_field(stack):
    run = prefect(stack, "deployment", "run", "align-reads/on-demand", "--param",
                  'params={"reads": "r.fq", "reference": "ref.fa", "ranks": 0}', timeout=120)
    assert run.returncode != 0
    assert "params.ranks" in run.stdout + run.stderr


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=20000", "--window-size=1400,1000"]


def chromium(url: str, profile: Path, *extra: str) -> str:
    proc = subprocess.run([shutil.which("chromium"), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, text=True, timeout=120)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", proc.stdout))


@pytest.mark.skipif(shutil.which("chromium") is None, reason="make test installs chromium")
def test_ui_shows_run_state_and_summary_artifact(stack, completed_run, tmp_path):
    flow_run_id, out = completed_run
    run_url = f"{stack['ui']}/runs/flow-run/{flow_run_id}"
    page = chromium(run_url, tmp_path / "p1", "--dump-dom")
    assert "Completed" in page and "align-reads" in page
    shot = Path(os.environ.get("HELIXFLOW_SCREENSHOT_DIR", tmp_path)) / "flow-run.png"
    chromium(run_url, tmp_path / "p2", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artifacts = chromium(f"{stack['ui']}/artifacts/key/qc-reads", tmp_path / "p3", "--dump-dom")
    assert "qc-reads" in artifacts and "reads: QC" in artifacts
