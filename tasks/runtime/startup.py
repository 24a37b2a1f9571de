"""The CLI's start-up: Prefect's temporary API server and the local Ray cluster come up side
by side instead of one after the other (each takes several seconds of imports and process
starts). The CLI starts the server as its first step (:mod:`tasks.runtime.api_server`) where
it can tell that the run needs one; otherwise Prefect's own start of it runs in a thread here.
A served deployment, or a run with ``PREFECT_API_URL`` set, has its API server up already; it
then starts Ray alone, as the flow does.

On a temporary server the flow runs send no heartbeats. Heartbeats let a server that outlives
the run mark it crashed; a temporary server ends with the run. Each flow run's end also waits
for its heartbeat thread's current 1-s sleep, up to 1 s per flow run (the run and each sample's).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from tasks.runtime.api_server import early_server
from tasks.runtime.ray_cluster import ray_connection


def _needs_temporary_server() -> bool:
    """Whether the flow's client would start Prefect's temporary API server: no server of
    its own (``PREFECT_API_URL``), and one may be started."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    return not PREFECT_API_URL.value() and bool(PREFECT_SERVER_EPHEMERAL_ENABLED.value())


def _start_temporary_server() -> None:
    try:
        from prefect.server.api.server import SubprocessASGIServer  # seconds of imports: in this thread too

        SubprocessASGIServer().start()  # one per process: the flow's client finds this one running
    except Exception:  # noqa: BLE001 - the flow's own client starts it again and raises what went wrong
        pass


@contextlib.contextmanager
def started_together(ray_address: str | None, ray_workers: int | None) -> Iterator[None]:
    """Ray (local, or joined at ``ray_address``) for the block, started while Prefect's
    temporary server starts in a thread; the block begins when both are up. The flow's own
    :func:`~tasks.runtime.ray_cluster.ray_connection` then finds Ray up and leaves it to this."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    thread = None
    early = early_server()
    temporary = early is not None or _needs_temporary_server()
    if early is None and temporary:
        thread = threading.Thread(target=_start_temporary_server, name="helixflow-prefect-api", daemon=True)
        thread.start()
    no_heartbeats = temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}) if temporary \
        else contextlib.nullcontext()
    try:
        with ray_connection(ray_address, ray_workers), no_heartbeats:
            if thread is not None:
                thread.join()
            if early is not None:  # started before the CLI's imports; raises if it never answered, naming why
                early.wait_ready()
            yield
    finally:
        if thread is not None:
            thread.join()


@contextlib.contextmanager
def server_ready() -> Iterator[None]:
    """The block begins once the server the CLI started (if any) answers; Ray is left to the
    flow. For a run that fails before Ray is worth starting (a bad samplesheet)."""
    early = early_server()
    if early is not None:
        early.wait_ready()
    yield
