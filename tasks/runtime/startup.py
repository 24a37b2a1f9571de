"""The CLI's start-up: Prefect's temporary API server and the local Ray cluster come up side
by side instead of one after the other (each takes several seconds of imports and process
starts). A served deployment, or a run with ``PREFECT_API_URL`` set, has its API server up
already; it then starts Ray alone, as the flow does."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

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
    thread = None
    if _needs_temporary_server():
        thread = threading.Thread(target=_start_temporary_server, name="helixflow-prefect-api", daemon=True)
        thread.start()
    try:
        with ray_connection(ray_address, ray_workers):
            if thread is not None:
                thread.join()
            yield
    finally:
        if thread is not None:
            thread.join()
