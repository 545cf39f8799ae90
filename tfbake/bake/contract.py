"""What tfbake reads of a bake's runbook (runbook.yaml, recipe-command.yaml), in one place.

The runbook runs in AWS and tfbake reads its traces: steps by name, outputs by step, and the
builder instance by the tags the launch step writes. Every such name is here, next to what it
refers to; tests/bake/test_runbook_contract.py checks each against the shipped documents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tfbake.aws.calls import AwsContext, aws_errors
from tfbake.model import tags

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import FilterTypeDef

# Steps of the success path that the client watches or reads.
IDENTIFY_BUILDER = "IdentifyBuilder"  # output InstanceId: the one builder of the bake
WAIT_FOR_BUILDER_ONLINE = "WaitForBuilderOnline"  # where a builder without an agent waits
RUN_RECIPE = "RunRecipe"  # the aws:runCommand step; output CommandId
# The recipe document's step (recipe-command.yaml): the agent names its log streams after it.
RECIPE_PLUGIN = "RunRecipe"
# The runbook's one output: the AMI the bake created.
IMAGE_OUTPUT = "CreateImage.ImageId"
# Step outputs as GetAutomationExecution reports them.
INSTANCE_ID_OUTPUT = "InstanceId"
COMMAND_ID_OUTPUT = "CommandId"

# States of an instance that still costs money or may come back: not terminated yet.
LIVE_STATES = ["pending", "running", "stopping", "stopped"]


def builder_filters(execution_id: str | None, states: list[str]) -> list[FilterTypeDef]:
    """The query for builder instances, as the launch steps tag them: role builder, and the
    execution id when one bake's builders are wanted."""
    filters: list[FilterTypeDef] = [
        {"Name": f"tag:{tags.ROLE}", "Values": [tags.ROLE_BUILDER]},
        {"Name": "instance-state-name", "Values": states},
    ]
    if execution_id is not None:
        filters.append({"Name": f"tag:{tags.EXECUTION_ID}", "Values": [execution_id]})
    return filters


def builder_instances(
    aws: AwsContext, execution_id: str | None, states: list[str] = LIVE_STATES
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The builder instances of one bake (or of every bake, with None), across all pages, and
    the last page's answer (which carries the time AWS answered at)."""
    ec2 = aws.client("ec2")
    instances: list[dict[str, Any]] = []
    last: dict[str, Any] = {}
    with aws_errors("ec2:DescribeInstances", aws.effective_region):
        paginator = ec2.get_paginator("describe_instances")
        for page in paginator.paginate(Filters=builder_filters(execution_id, states)):
            last = dict(page)
            instances.extend(dict(i) for r in page.get("Reservations", []) for i in r["Instances"])
    return instances, last


def step_output(execution: dict[str, Any], step: str, output: str) -> str:
    """One output of one step of a GetAutomationExecution answer; '' when it has none."""
    for executed in execution.get("StepExecutions", []):
        if executed.get("StepName") == step:
            values = (executed.get("Outputs") or {}).get(output) or [""]
            return str(values[0])
    return ""
