"""Bake locks that no client will ever release: found by `tfbake cleanup`, released by --apply.

Which lock is stale is claim.py's rule (judge_left_behind), with the age of a lock that names
no bake read on AWS's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tfbake.aws.calls import AwsContext, aws_errors
from tfbake.aws.clock import age_on_aws_clock
from tfbake.bake.claim import judge_left_behind
from tfbake.bake.execution import Snapshot, snapshot
from tfbake.bake.lock import GUARD_SUFFIX, LOCK_PREFIX, BakeLock, LockRecord, StoredLock
from tfbake.model.errors import AwsError


@dataclass(frozen=True)
class StaleLock:
    fingerprint: str
    record: LockRecord
    reason: str


def find_stale_locks(aws: AwsContext, max_age: timedelta) -> list[StaleLock]:
    region = aws.effective_region
    ssm = aws.client("ssm")
    found: list[tuple[str, StoredLock]] = []
    with aws_errors(f"ssm:GetParametersByPath {LOCK_PREFIX}", region):
        pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=LOCK_PREFIX.rstrip("/"))
        for page in pages:
            for parameter in page.get("Parameters", []):
                fingerprint = parameter["Name"].removeprefix(LOCK_PREFIX)
                if fingerprint.endswith(GUARD_SUFFIX):
                    continue  # a guard lives for three calls; the lock it guards decides
                age = age_on_aws_clock(page, parameter.get("LastModifiedDate"))
                found.append((fingerprint, StoredLock(LockRecord.decode(parameter["Value"]), age)))

    def read(execution_id: str) -> Snapshot:
        return snapshot(ssm, execution_id, region)

    stale = []
    for fingerprint, stored in found:
        reason = judge_left_behind(stored, fingerprint, read, max_age)
        if reason:
            stale.append(StaleLock(fingerprint, stored.record, reason))
    return stale


def release_stale_locks(aws: AwsContext, locks: list[StaleLock]) -> list[AwsError]:
    """Release each lock that is still as it was found; one that fails does not stop the rest.
    The failures, in order."""
    ssm = aws.client("ssm")
    failures = []
    for lock in locks:
        try:
            BakeLock(ssm, lock.fingerprint, aws.effective_region).delete_if_unchanged(lock.record)
        except AwsError as err:
            failures.append(err)
    return failures
