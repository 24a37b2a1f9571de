"""S3-compatible servers on loopback, for tests and benchmarks: moto's standalone server
(objects in memory, one Python process) and s3rver (objects in a folder, Node; installed by
``deployments/s3rver/install.sh``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

S3RVER_DIR = Path(__file__).resolve().parent.parent / "deployments" / "s3rver"
S3RVER_KEY = "S3RVER"  # s3rver's built-in access key id and secret


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
