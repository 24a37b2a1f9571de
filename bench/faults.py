"""The faults ``make chaos`` injects, each into a real run of the CLI (``python -m flows.pipeline``,
local Ray, local ``mpiexec`` or the one-node Slurm). A row's ``inject`` runs the faulty attempt
under ``<work>/<name>`` and returns its exit code and last line; ``rerun`` holds the flags of
the user's run after the fault is gone, in the same folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLURM_SCRIPT = ROOT / "deployments" / "local-slurm" / "slurm.sh"


class Case:
    """One data set and the command lines that align it, one folder per row."""

    def __init__(self, work: Path, ref: Path, reads: Path) -> None:
        self.work, self.ref, self.reads = work, ref, reads

    def args(self, name: str, **extra: str) -> list[str]:
        flags = {"reads": str(self.reads), "reference": str(self.ref), "output": str(self.work / name / "out"),
                 "staging-dir": str(self.work / name / "fsx"), "backend": "local", "ranks": "2",
                 "shard-size": "2000", **extra}
        return [sys.executable, "-m", "flows.pipeline", *[w for k, v in flags.items() for w in (f"--{k}", v)]]

    def start(self, name: str, env: dict | None = None, **extra: str) -> subprocess.Popen:
        (self.work / name).mkdir(parents=True, exist_ok=True)
        log = open(self.work / name / "log.txt", "ab")
        return subprocess.Popen(self.args(name, **extra), env={**os.environ, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def run(self, name: str, env: dict | None = None, **extra: str) -> tuple[int, str]:
        proc = self.start(name, env, **extra)
        proc.wait(timeout=1200)
        return proc.returncode, last_line(self.work / name / "log.txt")


def last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def wait_for_path(proc: subprocess.Popen, base: Path, pattern: str, timeout: float = 300) -> bool:
    """Wait until a file matching ``pattern`` under ``base`` exists (False if the run ended first)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if base.is_dir() and any(base.glob(pattern)):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def kill_flow(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the flow and what shares its process group; not the MPI job
    proc.wait(timeout=60)


def finish(proc: subprocess.Popen, case: Case, name: str) -> tuple[int, str]:
    proc.wait(timeout=1200)
    return proc.returncode, last_line(case.work / name / "log.txt")


@dataclass
class Row:
    fault: str
    inject: Callable[[str], tuple[int, str]]
    rerun: dict = field(default_factory=dict)  # flags of the recovery run
    rerun_env: dict = field(default_factory=dict)


def core_rows(case: Case) -> list[Row]:
    def killed_mid_encode(name):
        proc = case.start(name, {"HELIXFLOW_SHARD_SLEEP": "0.5"})
        wait_for_path(proc, case.work / name / "fsx", "run-*/reads/*.done.json")
        kill_flow(proc)
        return proc.returncode, "SIGKILL to the flow while it encoded"

    def killed_mid_align(name):
        proc = case.start(name, {"HELIXFLOW_RANK_SLEEP": "20"})
        wait_for_path(proc, case.work / name / "fsx", "run-*/align/job.json")
        kill_flow(proc)
        return proc.returncode, "SIGKILL to the flow while its ranks ran (left running)"

    def tampered_manifest(name):
        proc = case.start(name, {"HELIXFLOW_RANK_SLEEP": "8"})
        wait_for_path(proc, case.work / name / "fsx", "run-*/align/job.json")
        manifest = next((case.work / name / "fsx").glob("run-*/manifest.json"))
        body = json.loads(manifest.read_text())
        body["shards"].pop()
        manifest.write_text(json.dumps(body, indent=2))
        return finish(proc, case, name)

    def same_key_runs(name):
        first = case.start(name, {"HELIXFLOW_RANK_SLEEP": "15"})
        wait_for_path(first, case.work / name / "fsx", "run-*/align/job.json")
        second = case.run(name)  # same inputs, settings and staging folder, while the first aligns
        first.wait(timeout=600)
        return second[0], f"second run: {second[1]} | first run: exit {first.returncode}"

    # Ray's memory monitor set to kill every task (the node always uses more than 1% of its
    # memory): each Ray task is tried 1 + task_oom_retries times, then fails with Ray's error.
    oom = {"RAY_memory_usage_threshold": "0.01", "RAY_memory_monitor_refresh_ms": "50"}
    return [
        Row("SIGKILL mid-encode", killed_mid_encode),
        Row("SIGKILL mid-align", killed_mid_align),
        Row("rank crash", lambda name: case.run(name, {"HELIXFLOW_FAIL_RANK": "1"})),
        Row("rank killed by a signal", lambda name: case.run(name, {"HELIXFLOW_KILL_RANK": "1"})),
        Row("manifest edited after staging", tampered_manifest),
        Row("two runs, one run folder", same_key_runs),
        Row("Ray tasks OOM-killed", lambda name: case.run(name, oom)),
    ]


def disk_full_row(case: Case, staged_bytes: int, mounts: list[Path]) -> Row:
    """The staging folder on a tmpfs a third the size the run needs; then the user makes room
    (the tmpfs grows) and runs the same command again."""

    def disk_full(name):
        fsx = case.work / name / "fsx"
        fsx.mkdir(parents=True, exist_ok=True)
        size = max(staged_bytes // 3, 64 << 10)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "helixflow-chaos", str(fsx)], check=True)
        mounts.append(fsx)
        code, line = case.run(name)
        subprocess.run(["mount", "-o", f"remount,size={4 * staged_bytes + (64 << 20)}", str(fsx)], check=True)
        return code, line

    return Row("disk full on the staging folder", disk_full)


def s3_row(case: Case, work: Path) -> tuple[Row, Callable[[], None]]:
    """Reads fetched from a loopback S3 server through a proxy that answers every GET with 503
    SlowDown; the rerun goes through the same proxy once the storm is over."""
    from bench.s3_proxy import FaultProxy, client
    from bench.s3_servers import start_moto

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(env)
    server, url = start_moto(work / "moto.log")
    s3 = client(url)
    s3.create_bucket(Bucket="chaos")
    s3.upload_file(str(case.reads), "chaos", "reads.fq.gz")
    proxy = FaultProxy(url)
    flags = {"reads": "s3://chaos/reads.fq.gz", "s3.endpoint-url": proxy.url, "s3.max-attempts": "3"}

    def storm(name):
        proxy.slowdown = 1 << 30
        try:
            return case.run(name, env, **flags)
        finally:
            injected, proxy.slowdown = proxy.injected, 0
            print(f"  (503 answers sent: {injected})", flush=True)

    def stop():
        proxy.close()
        server.terminate()
        server.wait(timeout=30)

    return Row("S3 503 storm on the reads", storm, rerun=flags, rerun_env=env), stop


def slurm_rows(case: Case) -> list[Row]:
    slurm = {"backend": "slurm"}

    def node_state() -> str:
        out = subprocess.run(["scontrol", "show", "node", "-o"], capture_output=True, text=True).stdout
        return next((w.split("=", 1)[1] for w in out.split() if w.startswith("State=")), "")

    def slurmd_killed(name):
        proc = case.start(name, {"HELIXFLOW_RANK_SLEEP": "20"}, **slurm)
        wait_for_path(proc, case.work / name / "fsx", "run-*/align/job.json")
        time.sleep(3)  # the job is running
        subprocess.run(["pkill", "-KILL", "-x", "slurmd"])
        subprocess.run(["pkill", "-KILL", "-x", "slurmstepd"])
        deadline = time.time() + 180
        while "DOWN" not in node_state() and time.time() < deadline:
            time.sleep(1)
        subprocess.run(["bash", str(SLURM_SCRIPT), "up"], capture_output=True, timeout=300, check=True)
        return finish(proc, case, name)

    return [
        Row("Slurm job that can never start", lambda name: case.run(name, backend="slurm", ranks="6")),
        Row("slurmd killed mid-align (node lost)", slurmd_killed, rerun=slurm),
        Row("Slurm time limit reached", lambda name: case.run(name, {"HELIXFLOW_RANK_SLEEP": "150"},
                                                               **slurm, **{"time-limit": "1"}), rerun=slurm),
    ]
