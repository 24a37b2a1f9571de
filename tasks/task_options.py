"""Retry rules for tasks that do I/O, in one place: transient errors retry, bad input does not."""

from __future__ import annotations

from prefect.cache_policies import NO_CACHE

from hpc.manifest import ManifestError
from tasks.fastx import FastxFormatError

# Errors that retrying cannot fix: the input itself is wrong.
PERMANENT_ERRORS = (FastxFormatError, FileNotFoundError, ManifestError, ValueError)


def retry_unless_bad_input(task, task_run, state) -> bool:
    try:
        state.result()
    except PERMANENT_ERRORS:
        return False
    except Exception:  # noqa: BLE001 - anything else may be transient
        return True
    return False


IO_TASK = dict(
    retries=3,
    retry_delay_seconds=[2, 5, 15],
    retry_condition_fn=retry_unless_bad_input,
    cache_policy=NO_CACHE,
)
