"""Bake locks that no client will ever release: found by `tfbake cleanup`, released by --apply.

A lock is stale when the execution it names has ended or is unknown to SSM (its client died
before releasing it, or SSM's history no longer has it), or when it names no execution and is
older than the age after which a starting client must have recorded one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from tfbake.aws.calls import AwsContext, aws_errors, paginate
from tfbake.bake.execution import ACTIVE, execution_status
from tfbake.bake.lock import GUARD_SUFFIX, LOCK_PREFIX, BakeLock, LockRecord
from tfbake.model.errors import AwsError


@dataclass(frozen=True)
class StaleLock:
    fingerprint: str
    record: LockRecord
    reason: str


def find_stale_locks(aws: AwsContext, max_age: timedelta) -> list[StaleLock]:
    region = aws.effective_region
    ssm = aws.client("ssm")
    with aws_errors(f"ssm:GetParametersByPath {LOCK_PREFIX}", region):
        parameters = list(
            paginate(ssm, "get_parameters_by_path", "Parameters", Path=LOCK_PREFIX.rstrip("/"))
        )
    now = datetime.now(timezone.utc)
    stale = []
    for parameter in parameters:
        fingerprint = parameter["Name"].removeprefix(LOCK_PREFIX)
        if fingerprint.endswith(GUARD_SUFFIX):
            continue  # a guard lives for three calls; the lock it guards decides
        record = LockRecord.decode(parameter["Value"])
        reason = _why_stale(aws, record, now - parameter["LastModifiedDate"], max_age)
        if reason:
            stale.append(StaleLock(fingerprint, record, reason))
    return stale


def release_stale_locks(aws: AwsContext, locks: list[StaleLock]) -> None:
    ssm = aws.client("ssm")
    for lock in locks:
        BakeLock(ssm, lock.fingerprint, aws.effective_region).release(lock.record)


def _why_stale(aws: AwsContext, record: LockRecord, age: timedelta, max_age: timedelta) -> str:
    if not record.execution_id:
        if age > max_age:
            return f"names no bake after {int(age.total_seconds() // 60)} min"
        return ""  # a client may be starting its bake right now
    status = execution_status(aws.client("ssm"), record.execution_id, aws.effective_region)
    if status is None:
        return f"execution {record.execution_id} is unknown to SSM"
    return "" if status in ACTIVE else f"execution {record.execution_id} is {status}"


def release_if_finished(aws: AwsContext, fingerprint: str, execution_id: str) -> bool:
    """Release the lock of a bake whose AMI is ready, if it still names that ended bake.

    A client killed after its bake finished never released the lock; the next lookup that finds
    the bake's AMI does. True when released. Never fails the lookup that calls it.
    """
    region = aws.effective_region
    ssm = aws.client("ssm")
    lock = BakeLock(ssm, fingerprint, region)
    try:
        record = lock.read()
        if record is None or record.execution_id != execution_id:
            return False
        if execution_status(ssm, execution_id, region) in ACTIVE:
            return False  # its last step is ending right now; its client releases it
        return lock.release(record)
    except AwsError:
        return False
