"""Connect to Ray for the length of a block: local by default, or an existing cluster."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def ray_connection(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Start local Ray (or join ``address``: ``auto``, ``ray://host:10001``) unless already up.

    One warm-up task per CPU is started, not waited for: each Ray worker imports the encoder
    and loads its compiled kernels (about 3 s a worker) while the driver goes on, e.g.
    hashing the inputs; a driver thread loads the chunk cutter the same way. A connection
    made here is shut down on exit; one made by the caller is left alone.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), **kwargs)
    threading.Thread(target=_warm_up, args=("driver",), name="helixflow-warm-up", daemon=True).start()
    warm = ray.remote(num_cpus=1)(_warm_up)
    started = [warm.remote("worker") for _ in range(min(64, int(ray.cluster_resources().get("CPU", 1))))]  # noqa: F841
    try:
        yield
    finally:
        ray.shutdown()


def _warm_up(role: str) -> None:
    from tasks.fastq_chunks import warm_up  # imported here: Ray workers need not import it to join

    warm_up(role)
