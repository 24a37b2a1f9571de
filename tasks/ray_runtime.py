"""Connect to Ray for the length of a block: local by default, or an existing cluster."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def ray_connection(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Start local Ray (or join ``address``: ``auto``, ``ray://host:10001``) unless already up.

    A connection made here is shut down on exit; one made by the caller is left alone.
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
    try:
        yield
    finally:
        ray.shutdown()
