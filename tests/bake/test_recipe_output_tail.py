"""A failed bake's report shows the real end of the recipe's output, not only what AWS keeps."""

from __future__ import annotations

import pytest

from tests.support.bakes import no_progress, plan_for
from tests.support.specs import BUILDER
from tfbake.aws.calls import AwsContext
from tfbake.ensure import ensure
from tfbake.model.errors import BakeFailed
from tfbake.sandbox import Sandbox

LOG_GROUP = "/tfbake/recipe-output"
LAST_LINE = "pull failed: docker.io/library/nginx:1.27: connection reset"
# Longer than the 24,000 characters of stdout that GetCommandInvocation keeps.
LONG_FAILURE = (
    "\n".join(f"progress line {i:05d} " + "." * 80 for i in range(400)) + "\n" + LAST_LINE
)


def _failed_bake_details(aws: AwsContext, sandbox: Sandbox, **builder: str) -> str:
    plan = plan_for(aws, builder={**BUILDER, **builder})
    sandbox.inject_failure("RunRecipe", LONG_FAILURE)
    with pytest.raises(BakeFailed) as caught:
        ensure(plan, aws, on_progress=no_progress)
    return caught.value.details


def test_with_a_log_group_the_report_shows_the_last_line(aws: AwsContext, sandbox: Sandbox) -> None:
    details = _failed_bake_details(aws, sandbox, log_group=LOG_GROUP)

    assert details.splitlines()[-1] == LAST_LINE


def test_the_whole_output_is_in_the_log_group(aws: AwsContext, sandbox: Sandbox) -> None:
    _failed_bake_details(aws, sandbox, log_group=LOG_GROUP)

    logs = aws.client("logs")
    [stream] = logs.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]
    [command] = sandbox.recorded_commands()
    [instance_id] = command.instance_ids
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"])
    assert stream["logStreamName"] == f"{command.command_id}/{instance_id}/RunRecipe/stdout"
    assert sum(len(e["message"]) + 1 for e in events["events"]) > 24_000


def test_without_a_log_group_aws_keeps_only_the_start(aws: AwsContext, sandbox: Sandbox) -> None:
    details = _failed_bake_details(aws, sandbox)

    assert LAST_LINE not in details  # the sandbox cuts stdout as Run Command does
    assert aws.client("logs").describe_log_groups()["logGroups"] == []


def test_the_log_group_is_not_part_of_the_fingerprint(aws: AwsContext) -> None:
    plain = plan_for(aws)
    logged = plan_for(aws, builder={**BUILDER, "log_group": LOG_GROUP})

    assert logged.fingerprint.value == plain.fingerprint.value
