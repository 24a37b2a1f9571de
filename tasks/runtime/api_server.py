"""Prefect's temporary API server, started by the CLI as its very first step.

A flow run from the command line with no API server of its own gets a temporary one from
Prefect: a ``uvicorn`` process that imports Prefect's server (about 4.5 s here) before it
answers. Prefect starts it only once the CLI has imported everything and asks for it, and
the CLI then waits for it. Started here, before any import but the standard library's, it
comes up while the CLI imports its own modules and starts Ray. It is the same process
Prefect would start (the same command and environment), on a free port that the CLI's
Prefect client is pointed at (``PREFECT_API_URL``), stopped when the CLI exits, and killed
with it if the CLI is killed.

Only the standard library is imported here: Prefect's settings cannot be read without
importing Prefect, so the decision is made on what can be seen without it. A server is
started only when nothing names an API server for this run: no ``PREFECT_API_URL`` in the
environment, temporary servers not turned off, and none of the files Prefect reads its
settings from (``.env``, ``prefect.toml``, ``pyproject.toml``'s ``[tool.prefect]`` in the
working folder, the profiles file) mentioning an API URL, temporary servers or the server's
services. Otherwise the CLI goes on as before and Prefect decides (:mod:`tasks.runtime.startup`).
The differences from Prefect's own temporary server: automations are off in it, and it does
not register every installed block type as it starts (see ``_SERVER_DEFAULTS``), unless the
environment turns them on.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

# Wider than Prefect's own 20 s: on a new Prefect home the server first creates its database
# (14.5-16.5 s to its first answer here instead of 5.5 s; over 20 s on a slower CI machine),
# and Prefect's own wait counts only its sleeps, not the wall. The setting still rules.
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
# Settings that, if any settings file mentions them, leave the choice to Prefect.
_MENTIONS = ("PREFECT_API_URL", "PREFECT_SERVER_EPHEMERAL", "PREFECT_SERVER_SERVICES", "[api]", "api.url",
             "[server.ephemeral]", "[server.services", "REGISTER_BLOCKS_ON_START", "BLOCKS_REGISTER_ON_START",
             "register_blocks_on_start", "MEMOIZE_BLOCK_AUTO_REGISTRATION", "memoize_block_auto_registration")
# A temporary server lives for one run: automations (the triggers and actions services) have
# nothing to act on in it, and starting them costs it about 1 s of CPU before it answers
# (5.8 s to its first answer here, 4.7-5.3 s without). Nor does it register every installed
# block type on start: that is for a UI listing them, and this server has none. Even when
# its memo says nothing changed, the check imports every Prefect collection first
# (prefect-aws, so boto3 and botocore: 0.47 s of CPU here, while the CLI and Ray start on
# the same cores). A block saved on it registers its own type, as on any server, so
# `--credentials-block` and `--bucket-block` work as before. A setting in the environment,
# under any of its names, still rules.
_SERVER_DEFAULTS = {
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": ("false",),
    "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": ("false", "PREFECT_API_BLOCKS_REGISTER_ON_START"),
    "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": ("false", "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION"),
}


def server_defaults(env: dict[str, str]) -> dict[str, str]:
    """The settings of :data:`_SERVER_DEFAULTS` that ``env`` sets under none of their names."""
    return {name: value for name, (value, *aliases) in _SERVER_DEFAULTS.items()
            if not any(n in env for n in (name, *aliases))}


def answers(api_url: str) -> bool:
    """Whether a Prefect API at ``api_url`` answers its health check now."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class EarlyServer:
    """The uvicorn process; :meth:`wait_ready` blocks until its health check answers."""

    def __init__(self, process: subprocess.Popen, port: int, timeout_s: float):
        self.process = process
        self.port = port
        self.timeout_s = timeout_s
        self.error: str | None = None
        self._ready = threading.Event()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _poll(self) -> None:  # until it answers or exits; wait_ready bounds the wait
        while True:
            code = self.process.poll()
            if code is not None:
                self.error = (f"Prefect's temporary API server on port {self.port} exited with code {code} "
                              "before it answered")
                break
            if answers(self.api_url):
                break
            time.sleep(0.1)
        self._ready.set()

    def wait_ready(self) -> None:
        """Block until the server answers, at most ``timeout_s`` from this call (it shares the
        CPUs with the CLI's imports and Ray's start until then); raise naming what went wrong."""
        if not self._ready.wait(self.timeout_s):
            raise RuntimeError(f"Prefect's temporary API server on port {self.port} did not answer within "
                               f"{self.timeout_s:.0f} s; a longer wait is set with "
                               "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")
        if self.error:
            raise RuntimeError(self.error)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_server: EarlyServer | None = None


def early_server() -> EarlyServer | None:
    """The server :func:`start_early_server` started in this process, if any."""
    return _server


def _settings_files(cwd: Path, env: dict[str, str]) -> list[Path]:
    home = Path(env.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    profiles = Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    return [cwd / ".env", cwd / "prefect.toml", cwd / "pyproject.toml", profiles]


def wanted(env: dict[str, str], cwd: Path) -> bool:
    """Whether the CLI may start Prefect's temporary server itself: nothing it can see names
    an API server or a setting about temporary servers (see the module's text)."""
    if env.get("PREFECT_API_URL") or env.get("PREFECT_SERVER_EPHEMERAL_ENABLED", "").lower() in ("0", "false", "no"):
        return False
    for path in _settings_files(cwd, env):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if path.name == "pyproject.toml":
            if "tool.prefect" in text:
                return False
        elif any(m in text for m in _MENTIONS):
            return False
    return True


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # in the child, before exec: SIGTERM when the CLI dies
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_early_server(argv: list[str]) -> EarlyServer | None:
    """Start the temporary API server unless the run will not need one (``--help``, or
    :func:`wanted` says no); point this process's Prefect at it. Call before importing Prefect."""
    global _server
    if _server is not None or any(a in ("-h", "--help") for a in argv) or not wanted(dict(os.environ), Path.cwd()):
        return _server
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.origin or "prefect" in sys.modules:
        return None
    port = free_port()
    env = {**server_defaults(dict(os.environ)), **os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
           "PREFECT__SERVER_FINAL": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "error",
         "--lifespan", "on"],
        env=env, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS") or STARTUP_TIMEOUT_S)
    _server = EarlyServer(process, port, timeout)
    atexit.register(_server.stop)  # registered before Prefect's own handlers, so it runs after them
    os.environ["PREFECT_API_URL"] = _server.api_url
    # This server has no UI (as Prefect's own temporary one has none): no "View at" links.
    os.environ.setdefault("PREFECT_UI_URL", "")
    threading.Thread(target=_server._poll, name="helixflow-prefect-api", daemon=True).start()
    return _server
