"""S3-compatible servers on loopback, for tests and benchmarks: moto's standalone server
(objects in memory, one Python process), s3rver (objects in a folder, Node; installed by
``deployments/s3rver/install.sh``) and Ceph's RADOS Gateway (a one-node Ceph with its
objects in the OSD's memory; ``deployments/ceph-rgw/rgw.sh``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from tasks.runtime.api_server import free_port

S3RVER_DIR = Path(__file__).resolve().parent.parent / "deployments" / "s3rver"
S3RVER_KEY = "S3RVER"  # s3rver's built-in access key id and secret
RGW_SCRIPT = S3RVER_DIR.parent / "ceph-rgw" / "rgw.sh"
RGW_KEYS = ("helixflow", "helixflow-secret")  # the S3 user rgw.sh makes


def _wait_for_port(proc: subprocess.Popen, port: int, log: Path, what: str) -> str:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}")
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"{what} did not open its port in 60 s; see {log}")


def start_moto(log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, env={**os.environ})
    return proc, _wait_for_port(proc, port, log, "moto_server")


def start_s3rver(data_dir: Path, log: Path, processes: int = 1) -> tuple[subprocess.Popen, str]:
    """s3rver serving ``data_dir`` with ``processes`` Node processes sharing one port. Its
    credentials are ``S3RVER_KEY`` / ``S3RVER_KEY``."""
    node = shutil.which("node")
    if node is None or not (S3RVER_DIR / "node_modules" / "s3rver").is_dir():
        raise RuntimeError(f"s3rver is not installed: run bash {S3RVER_DIR / 'install.sh'}")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen([node, str(S3RVER_DIR / "serve.js"), str(data_dir), str(port), str(processes)],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    return proc, _wait_for_port(proc, port, log, "s3rver")


def start_rgw(data_dir: Path, log: Path) -> str:
    """A fresh one-node Ceph serving S3 through radosgw on a free loopback port (``rgw.sh
    up``; it installs Ceph when missing, as root). Its credentials are ``RGW_KEYS``. Returns
    the endpoint URL; :func:`stop_rgw` stops it."""
    port = free_port()
    with open(log, "ab") as out:
        done = subprocess.run(["bash", str(RGW_SCRIPT), "up", str(data_dir), str(port)], stdout=subprocess.PIPE,
                              stderr=out, timeout=900)
    ready = [line.split()[1] for line in done.stdout.decode().splitlines() if line.startswith("ready ")]
    if done.returncode or not ready:
        stop_rgw(data_dir)
        raise RuntimeError(f"{RGW_SCRIPT} up exited with {done.returncode}: {log.read_text()[-2000:]}")
    return ready[-1]


def stop_rgw(data_dir: Path) -> None:
    subprocess.run(["bash", str(RGW_SCRIPT), "down", str(data_dir)], stdout=subprocess.DEVNULL, timeout=300,
                   check=False)


def rgw_pids(data_dir: Path) -> list[int]:
    """The running daemons of the cluster in ``data_dir`` (mon, osd, radosgw)."""
    pids = []
    for pid_file in (Path(data_dir) / "run").glob("*.pid"):
        text = pid_file.read_text().strip()
        if text.isdigit():
            pids.append(int(text))
    return pids


def rgw_collect_garbage(data_dir: Path) -> None:
    """Free the space of deleted objects now (radosgw frees a deleted multipart object's
    data a minute later otherwise, and the memstore OSD holds it in memory until then)."""
    subprocess.run(["radosgw-admin", "-c", str(Path(data_dir) / "ceph.conf"), "gc", "process", "--include-all"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120, check=True)
