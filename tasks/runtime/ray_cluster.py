"""Ray for the tasks: a connection for the length of a block (local by default, or an existing
cluster), and a bounded stream of remote calls with progress."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

PROGRESS_EVERY_S = 2.0  # the progress artifact is updated at most this often (and at the end)
# Ray retries a task its memory monitor killed without limit by default: a reference too big
# for the node was killed and retried forever. Twice here, then the task fails with Ray's
# OutOfMemoryError (the node's memory in use and in total), which the Prefect task's own
# retries see like any other failure. A cluster joined by address keeps its own setting
# (RAY_task_oom_retries on its nodes).
OOM_RETRIES = 2
LOCAL_RAY_CONFIG = {"task_oom_retries": OOM_RETRIES}
# A local Ray's object store: the FASTQ chunks the driver hands to the encode tasks passed
# through it (now through shared-memory files, tasks/runtime/handoff.py, unless one cannot be
# written), at most two a CPU at a time (stream_on_ray's window, 20-40 MB each). Ray's
# default store (30% of the node's memory) let every chunk land on fresh pages, and those the
# driver and the workers touched stayed in their RSS: the flow's process grew from 826 MiB
# at 2M reads to 1,027 MiB at 10M. Capped here, the pages are reused; a chunk that does not
# fit goes to Ray's fallback allocation on disk (slower, never lost). A cluster joined by
# address keeps its own size (`ray start --object-store-memory`).
STORE_PER_CPU = 128 * 2**20
STORE_MIN = 256 * 2**20
# A local Ray started for one run leaves out three of its Python daemons: the autoscaler monitor
# (a fixed one-node cluster has nothing to scale), the log monitor (worker output is not sent to
# the driver here; it stays in Ray's session logs) and the dashboard's API server (job submission
# and the state API, which nothing here calls). On this 2-core VM they cost 1.0-1.2 s of CPU and
# 0.5-1.5 s of ray.init's wall (3.0 s to 1.6 s idle), while Prefect's server starts beside it.
# A cluster joined by address, or started with `ray start`, keeps all of them.
LEAN_DAEMONS = {"no_monitor": True, "include_log_monitor": False}


def local_store_bytes(cpus: int, memory: int | None = None) -> int:
    """The object store of a local Ray with ``cpus`` CPUs: :data:`STORE_PER_CPU` a CPU, at least
    :data:`STORE_MIN`, at most 30% of the node's ``memory`` (Ray's own default)."""
    if memory is None:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(max(75 * 2**20, min(max(STORE_MIN, STORE_PER_CPU * cpus), 0.3 * memory)))


@contextlib.contextmanager
def ray_connection(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Start local Ray (or join ``address``: ``auto``, ``ray://host:10001``) unless already up.

    One warm-up task per CPU is started, not waited for: each Ray worker imports the encoder
    and loads its compiled kernels (about 3 s a worker) while the driver goes on, e.g.
    hashing the inputs; a driver thread loads the chunk cutter the same way. A connection
    made here is started without the daemons a one-run cluster has no use for
    (:func:`lean_local_start`), shut down on exit (an autoscaler monitor, where a full start left
    one, killed first: :func:`stop_autoscaler_monitor`), and SIGTERM handled again as before it (Ray's shutdown
    resets it to the default action, which ends the process without any handler); one made by
    the caller is left alone.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    in_main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if in_main else None
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address:
        ray.init(address=address, **kwargs)
    else:
        cpus = num_cpus or os.cpu_count() or 1
        with lean_local_start():
            ray.init(num_cpus=cpus, object_store_memory=local_store_bytes(cpus), _system_config=LOCAL_RAY_CONFIG,
                     **kwargs)
    # Workers unpickle warm_up by reference to its module, which does not import Prefect.
    from tasks.genomics.chunks import warm_up

    threading.Thread(target=warm_up, args=("driver",), name="helixflow-warm-up", daemon=True).start()
    warm = ray.remote(num_cpus=1)(warm_up)
    started = [warm.remote("worker") for _ in range(min(64, int(ray.cluster_resources().get("CPU", 1))))]  # noqa: F841
    try:
        yield
    finally:
        if not address:
            stop_autoscaler_monitor()
        ray.shutdown()
        if sigterm is not None:  # Ray's init set its own; its shutdown left the default action
            signal.signal(signal.SIGTERM, sigterm)


@contextlib.contextmanager
def lean_local_start() -> Iterator[bool]:
    """While the block runs, a local Ray that ``ray.init`` starts comes up without the daemons
    named at :data:`LEAN_DAEMONS` and without the dashboard's API server. ``ray.init`` has no
    options for them (``ray start`` has ``--no-monitor`` and ``--include-log-monitor``), so its
    parameters are set as they are made, and put back after. Yields whether it could: with a Ray
    whose internals differ, the block runs a full start instead."""
    try:
        from ray._private import node, parameter
    except ImportError:
        yield False
        return
    params_init = getattr(parameter.RayParams, "__init__", None)
    api_server = getattr(node.Node, "start_api_server", None)
    if params_init is None or api_server is None:
        yield False
        return

    def lean_params(self, *args, **kwargs):
        params_init(self, *args, **kwargs)
        for name, value in LEAN_DAEMONS.items():
            setattr(self, name, value)

    def no_api_server(self, *args, **kwargs):
        return None

    parameter.RayParams.__init__ = lean_params
    node.Node.start_api_server = no_api_server
    try:
        yield True
    finally:
        parameter.RayParams.__init__ = params_init
        node.Node.start_api_server = api_server


def stop_autoscaler_monitor() -> bool:
    """Kill the autoscaler monitor of the local Ray this process started (a child of it).
    Ray's shutdown gives it a second to exit on SIGTERM, and it takes all of it (the shutdown
    took 1.1-1.4 s here, 0.4 s without it); it keeps nothing that outlives the cluster.
    Returns whether one was found (never on a system without ``/proc``)."""
    me = os.getpid()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == me and b"autoscaler/_private/monitor.py" in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
                return True
        except (OSError, ValueError, IndexError):
            continue
    return False


def ray_result(ref):
    """``ray.get(ref)``, with an error raised in the worker re-raised as itself: its own type
    (so bad input is not retried) and its own message (file, line, what was expected), not
    Ray's wrapper with the worker's traceback as its text."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = err.cause
        if isinstance(cause, BaseException) and not isinstance(cause, ray.exceptions.RayError):
            raise cause from err  # the worker's traceback stays in the chain, for the log
        raise


def stream_on_ray(submit, work, label: str, key: str, total: int | None = None,
                  done: Callable[[int], None] | None = None) -> dict[int, dict]:
    """Run ``submit(item)`` on Ray for each (shard_no, item, reused_entry, fraction) from
    ``work``, keeping at most twice the cluster's CPUs in flight; reused entries skip Ray.
    Progress (a Prefect progress artifact, at most every ``PROGRESS_EVERY_S``) is shards done out of
    ``total`` when that is known, else the fraction of the input read for the last shard
    done. Logs reads/s and MB/s as shards finish. ``done(shard_no)`` is called as each
    submitted shard finishes. Returns entries by shard number."""
    import ray

    logger = get_run_logger()
    progress_id = create_progress_artifact(progress=0.0, key=key, description=f"{label}: % of the input done")
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    pending: dict = {}
    entries: dict[int, dict] = {}
    t0 = last_update = time.perf_counter()
    reads = size = 0
    shown = 0.0

    def finished(refs) -> None:
        nonlocal reads, size, last_update, shown
        for ref in refs:
            shard_no, fraction = pending.pop(ref)
            entry = ray_result(ref)
            if done is not None:
                done(shard_no)
            entries[shard_no] = entry
            reads += entry.get("reads", 0)
            size += entry.get("chunk_bytes", 0)
            shown = max(shown, 100.0 * (len(entries) / total if total else fraction))
        now = time.perf_counter()
        if now - last_update >= PROGRESS_EVERY_S:
            update_progress_artifact(progress_id, progress=round(min(shown, 99.9), 1))
            last_update = now
        if reads and len(entries) % 10 == 0:
            seconds = now - t0
            logger.info("%s: %d shards, %d reads, %.0f reads/s%s (%.0f%%)", label, len(entries), reads,
                        reads / seconds, f", {size / seconds / 2**20:.1f} MB/s" if size else "", shown)

    try:
        for shard_no, item, reused, fraction in work:
            if reused is not None:
                entries[shard_no] = {**reused, "reused": True}
                reads += reused.get("reads", 0)
                continue
            while len(pending) >= window:
                ready, _ = ray.wait(list(pending), num_returns=1)
                finished(ready)
            pending[submit(item)] = (shard_no, fraction)
    except BaseException:
        ray.wait(list(pending), num_returns=len(pending))  # let shards in flight land before the caller cleans up
        raise
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        finished(ready)
    update_progress_artifact(progress_id, progress=100.0)
    return entries
