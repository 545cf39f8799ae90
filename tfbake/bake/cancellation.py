"""Stop a bake: cancel its execution, terminate its builder, release its lock.

A cancelled Automation execution runs no further steps but its cancel workflow, which AWS
limits to two minutes and which cannot act on an execution that ended otherwise; this
terminates the builder too, by the execution-id tag the runbook puts on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tfbake.aws.calls import AwsContext, aws_errors, error_code
from tfbake.aws.catalog import tagged_images
from tfbake.bake.claim import judge, release_if_names
from tfbake.bake.contract import builder_instances
from tfbake.bake.execution import (
    ACTIVE,
    EXECUTION_NOT_FOUND,
    find_active_execution,
    read_execution,
    snapshot,
)
from tfbake.bake.lock import BakeLock
from tfbake.model import tags
from tfbake.model.errors import AwsError, BadInput
from tfbake.model.plan import Plan


@dataclass(frozen=True)
class Cancelled:
    execution_id: str
    previous_status: str
    terminated: tuple[str, ...]
    discarded: tuple[str, ...]  # half-made AMIs deregistered
    lock_released: bool

    @property
    def was_running(self) -> bool:
        return self.previous_status in ACTIVE


@dataclass(frozen=True)
class LockOfPlan:
    """What the plan's bake lock names: the execution to cancel, or why the lock was cleared."""

    execution_id: str | None
    cleared_because: str = ""


def execution_of_plan(plan: Plan, aws: AwsContext) -> LockOfPlan:
    """The execution the plan's bake lock names. A lock that names none SSM knows, or that
    tfbake did not write, is cleared instead (claim.py's rules), and the reason returned."""
    region = aws.effective_region
    ssm = aws.client("ssm")
    lock = BakeLock(ssm, plan.fingerprint.value, region)
    stored = lock.read()
    if stored is None:
        raise BadInput(
            f"no bake in progress for {plan.image_set.name!r} "
            f"(fingerprint {plan.fingerprint.short}) in {region}"
        )
    record = stored.record
    verdict = judge(
        record, lock.fingerprint, lambda execution_id: snapshot(ssm, execution_id, region)
    )
    if verdict.live is not None:
        return LockOfPlan(verdict.live.execution_id)
    if not verdict.stale:
        # Its client died before recording the bake, or is starting it right now.
        found = find_active_execution(ssm, plan.fingerprint.value, region)
        if found is not None:
            return LockOfPlan(found)
    elif verdict.ended is not None:
        return LockOfPlan(verdict.ended.execution_id)  # its builders may still need ending
    lock.delete_if_unchanged(record)
    return LockOfPlan(None, verdict.stale or "it named no bake SSM knows")


def cancel_execution(aws: AwsContext, execution_id: str) -> Cancelled:
    region = aws.effective_region
    ssm = aws.client("ssm")
    try:
        execution = read_execution(ssm, execution_id, region)
    except AwsError as err:
        if error_code(err) == EXECUTION_NOT_FOUND:
            raise BadInput(f"no SSM Automation execution {execution_id} in {region}") from None
        raise
    status = execution.get("AutomationExecutionStatus", "")
    if status in ACTIVE:
        with aws_errors(f"ssm:StopAutomationExecution {execution_id}", region):
            ssm.stop_automation_execution(AutomationExecutionId=execution_id, Type="Cancel")
    # Also for an execution that already ended: a builder it failed to terminate is still stray.
    # Its images are left alone unless the bake never finished them (still pending).
    terminated = terminate_builders(aws, execution_id)
    discarded = discard_unfinished_images(aws, execution_id)
    fingerprint = _fingerprint_of(execution)
    released = bool(fingerprint) and release_if_names(
        BakeLock(ssm, fingerprint, region), execution_id
    )
    return Cancelled(execution_id, status, terminated, discarded, released)


def live_builders(aws: AwsContext, execution_id: str) -> tuple[str, ...]:
    """The builder instances of an execution that are not terminated yet."""
    instances, _ = builder_instances(aws, execution_id)
    return tuple(instance["InstanceId"] for instance in instances)


def terminate_builders(aws: AwsContext, execution_id: str) -> tuple[str, ...]:
    region = aws.effective_region
    ec2 = aws.client("ec2")
    instances = live_builders(aws, execution_id)
    if instances:
        with aws_errors("ec2:TerminateInstances", region):
            ec2.terminate_instances(InstanceIds=instances)
    return tuple(instances)


def discard_unfinished_images(aws: AwsContext, execution_id: str) -> tuple[str, ...]:
    """Deregister what the cancelled bake imaged but left pending, with its snapshots.

    Tagged failed first, so that even if deregistration fails the AMI is never used; then gone,
    so its name (derived from the fingerprint) is free for the next bake.
    """
    region = aws.effective_region
    ec2 = aws.client("ec2")
    discarded = []
    for ami in tagged_images(ec2, ["self"], {tags.EXECUTION_ID: execution_id}, region):
        if ami.status != tags.STATUS_PENDING:
            # Ready (the bake finished first), or failed/revoked: its fate is gc's to decide,
            # which checks that nothing uses it.
            continue
        with aws_errors(f"ec2:DeregisterImage {ami.ami_id}", region):
            ec2.create_tags(
                Resources=[ami.ami_id],
                Tags=[{"Key": tags.STATUS, "Value": tags.STATUS_FAILED}],
            )
            ec2.deregister_image(ImageId=ami.ami_id)
            for snapshot in ami.snapshot_ids:
                ec2.delete_snapshot(SnapshotId=snapshot)
        discarded.append(ami.ami_id)
    return tuple(discarded)


def _fingerprint_of(execution: Mapping[str, Any]) -> str:
    values = execution.get("Parameters", {}).get("Fingerprint") or [""]
    return values[0]


def sweep_builders(aws: AwsContext, execution_id: str) -> str:
    """Terminate a builder the ended bake left running; the note for the error, '' if none.

    The runbook's failure path terminates its builder, unless that path fails too (its role
    lost a permission): then the client does it, or names the instance it could not stop.
    """
    try:
        left = live_builders(aws, execution_id)
    except AwsError as err:
        return f" (its builder may still run: {err.one_line()}; see `tfbake cleanup`)"
    if not left:
        return ""
    try:
        terminate_builders(aws, execution_id)
    except AwsError as err:
        return f" (its builder {', '.join(left)} is still running: {err.one_line()})"
    return f" (its runbook left builder {', '.join(left)} running; tfbake terminated it)"
