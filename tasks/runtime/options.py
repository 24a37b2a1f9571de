"""Retry rules for tasks that do I/O, in one place: transient errors retry, bad input does not."""

from __future__ import annotations

from prefect.cache_policies import NO_CACHE

from hpc.backend import SubmissionRejected
from hpc.files import StagingFullError
from hpc.manifest import ManifestError
from tasks.genomics.fastx import FastxFormatError
from tasks.runtime.owner import RunFolderBusy
from tasks.storage.index_cache import IndexMemoryError
from tasks.storage.uri import BadLocation

# Errors that retrying cannot fix: the input is wrong, or the scheduler said no.
PERMANENT_ERRORS = (FastxFormatError, FileNotFoundError, ManifestError, ValueError, SubmissionRejected, BadLocation,
                    StagingFullError, RunFolderBusy, IndexMemoryError)


def retry_unless(*permanent: type[BaseException]):
    """A Prefect retry condition: retry any failure except the ``permanent`` error types."""

    def condition(task, task_run, state) -> bool:
        try:
            state.result()
        except permanent:
            return False
        except Exception:  # noqa: BLE001 - anything else may be transient
            return True
        return False

    return condition


IO_TASK = dict(
    retries=3,
    retry_delay_seconds=[2, 5, 15],
    retry_condition_fn=retry_unless(*PERMANENT_ERRORS),
    cache_policy=NO_CACHE,
)
