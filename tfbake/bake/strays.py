"""Find builder instances a bake left behind: their execution is over, or they are too old."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tfbake.aws.calls import AwsContext, aws_errors
from tfbake.aws.clock import answered_at
from tfbake.bake.contract import builder_instances
from tfbake.bake.execution import ACTIVE, execution_status
from tfbake.model import tags
from tfbake.model.ami import tag_map


@dataclass(frozen=True)
class StrayBuilder:
    instance_id: str
    execution_id: str
    launched: datetime
    reason: str


def find_stray_builders(aws: AwsContext, max_age: timedelta) -> list[StrayBuilder]:
    region = aws.effective_region
    ssm = aws.client("ssm")
    instances, answer = builder_instances(aws, None)
    # Ages on AWS's clock: the time EC2 answered, minus the LaunchTime it recorded.
    now = answered_at(answer)
    strays = []
    for instance in instances:
        execution_id = tag_map(instance).get(tags.EXECUTION_ID, "")
        launched = instance["LaunchTime"]
        age = now - launched if now is not None else timedelta(0)
        reason = _why_stray(ssm, region, execution_id, age, max_age)
        if reason:
            strays.append(StrayBuilder(instance["InstanceId"], execution_id, launched, reason))
    return strays


def terminate(aws: AwsContext, strays: list[StrayBuilder]) -> None:
    if not strays:
        return
    with aws_errors("ec2:TerminateInstances", aws.effective_region):
        aws.client("ec2").terminate_instances(InstanceIds=[s.instance_id for s in strays])


def _why_stray(
    ssm: Any, region: str, execution_id: str, age: timedelta, max_age: timedelta
) -> str | None:
    # The execution decides first: a builder of a running bake is never stray, however long a
    # bake its spec allows (builder.timeout_minutes reaches a day).
    status = execution_status(ssm, execution_id, region) if execution_id else None
    if status in ACTIVE:
        return None
    if status is not None:
        return f"execution {execution_id} is {status}"
    if age > max_age:
        return f"running for {int(age.total_seconds() // 60)} min with no bake in progress"
    return None  # no known execution yet, and young: a bake may be starting
