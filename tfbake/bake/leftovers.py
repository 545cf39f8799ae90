"""What bakes leave behind, found and ended in one sweep: `tfbake cleanup`'s core.

Stray builders cost money by the hour and stale locks hold bakes back, so they are swept even
when the documents cannot be listed (a caller without ssm:ListDocuments); that failure is kept
and reported after the rest is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tfbake.aws.calls import AwsContext
from tfbake.bake.housekeeping import (
    MIN_AGE,
    UnusedDocument,
    delete_documents,
    find_unused_documents,
)
from tfbake.bake.stale_locks import StaleLock, find_stale_locks, release_stale_locks
from tfbake.bake.strays import StrayBuilder, find_stray_builders, terminate
from tfbake.model.errors import AwsError


@dataclass(frozen=True)
class Leftovers:
    builders: list[StrayBuilder]
    locks: list[StaleLock]
    documents: list[UnusedDocument]
    documents_error: AwsError | None = None  # why the documents could not be listed
    lock_errors: tuple[AwsError, ...] = ()  # why stale locks could not be released


def sweep(aws: AwsContext, *, max_age: timedelta, apply: bool) -> Leftovers:
    """Every leftover older than `max_age` (documents: a day); with `apply`, end them."""
    builders = find_stray_builders(aws, max_age)
    locks = find_stale_locks(aws, max_age)
    ssm, region = aws.client("ssm"), aws.effective_region
    try:
        documents, error = find_unused_documents(ssm, region, MIN_AGE), None
    except AwsError as err:
        documents, error = [], err
    lock_errors: list[AwsError] = []
    if apply:
        terminate(aws, builders)
        lock_errors = release_stale_locks(aws, locks)
        delete_documents(ssm, region, documents)
    return Leftovers(builders, locks, documents, error, tuple(lock_errors))
